"""Who does what on a convention: the chef de projet drafts, the State signs and terminates."""

import html
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conventions.models import Convention, Partie, ScanSigne
from tests.conventions.test_conventions import PDF, sign_all

pytestmark = pytest.mark.django_db


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def signed(convention) -> Convention:
    sign_all(convention)
    convention.mark_signed()
    convention.refresh_from_db()
    return convention


def parties_data(convention, **changes) -> dict:
    """The parties formset as the page posts it, with `changes` (« 1-role ») applied."""
    parties = list(convention.parties.all())
    data = {
        "parties-TOTAL_FORMS": str(len(parties)),
        "parties-INITIAL_FORMS": str(len(parties)),
        "parties-MIN_NUM_FORMS": "0",
        "parties-MAX_NUM_FORMS": "1000",
    }
    for i, p in enumerate(parties):
        data.update(
            {
                f"parties-{i}-id": p.pk,
                f"parties-{i}-nature": p.nature,
                f"parties-{i}-commune": p.commune_id or "",
                f"parties-{i}-nom_partenaire": p.nom_partenaire,
                f"parties-{i}-role": p.role,
                f"parties-{i}-date_signature": p.date_signature or "",
                f"parties-{i}-ordre": i,
            }
        )
    data.update({f"parties-{key.replace('__', '-')}": value for key, value in changes.items()})
    return data


def etat_index(convention) -> int:
    return [p.nature for p in convention.parties.all()].index(Partie.Nature.ETAT)


# The chef de projet -----------------------------------------------------------------------


def test_chef_de_projet_gets_403_on_the_state_actions(client_for, cdp_ussel, cadre_ussel):
    client = client_for(cdp_ussel)
    sign_all(cadre_ussel)
    assert client.post(reverse("conventions:signer", args=[cadre_ussel.pk])).status_code == 403
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.BROUILLON
    cadre_ussel.mark_signed()
    url = reverse("conventions:resilier", args=[cadre_ussel.pk])
    assert client.get(url).status_code == 403
    response = client.post(url, {"date": "2024-01-10", "motif": "Fin du programme"})
    assert response.status_code == 403
    Convention.objects.filter(pk=cadre_ussel.pk).update(date_signature=None)
    url = reverse("conventions:dater", args=[cadre_ussel.pk])
    assert client.post(url, {"date": "2022-10-18"}).status_code == 403
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.SIGNEE
    assert cadre_ussel.date_signature is None


def test_chef_de_projet_sees_only_the_buttons_they_may_use(client_for, cdp_ussel, cadre_ussel):
    client = client_for(cdp_ussel)
    url = reverse("conventions:detail", args=[cadre_ussel.pk])
    content = page(client, url)
    for allowed in ("Envoyer pour signature", "Modifier les parties", "Déposer", "Générer le PDF"):
        assert allowed in content
    assert "Marquer comme signée" not in content
    assert "la préfecture enregistre la signature de l’État" in content
    signed(cadre_ussel)
    Convention.objects.filter(pk=cadre_ussel.pk).update(date_signature=None)
    content = page(client, url)
    assert "Préparer un avenant" in content
    assert "Résilier" not in content
    assert "Enregistrer la date de signature" not in content


def test_prefecture_sees_the_state_buttons(client_for, prefecture_19, cadre_ussel):
    client = client_for(prefecture_19)
    url = reverse("conventions:detail", args=[cadre_ussel.pk])
    assert "Marquer comme signée" in page(client, url)
    signed(cadre_ussel)
    Convention.objects.filter(pk=cadre_ussel.pk).update(date_signature=None)
    content = page(client, url)
    assert "Résilier la convention" in content
    assert "Enregistrer la date de signature" in content


@pytest.mark.parametrize("who", ["elu_ussel", "elu_epci", "partenaire"])
def test_readers_see_no_button(request, client_for, who, cadre_ussel):
    client = client_for(request.getfixturevalue(who))
    content = page(client, reverse("conventions:detail", args=[cadre_ussel.pk]))
    for button in ("Envoyer pour signature", "Marquer comme signée", "Modifier", "Déposer"):
        assert button not in content


def test_chef_de_projet_records_the_communes_dates_not_the_states(
    client_for, cdp_ussel, cadre_ussel
):
    client = client_for(cdp_ussel)
    url = reverse("conventions:parties", args=[cadre_ussel.pk])
    etat = etat_index(cadre_ussel)
    data = parties_data(
        cadre_ussel,
        **{
            "0__date_signature": "2022-10-18",
            f"{etat}__role": "en_presence",
            f"{etat}__date_signature": "2022-10-20",
        },
    )
    assert client.post(url, data).status_code == 302
    assert cadre_ussel.parties.get(commune_id="19275").date_signature == date(2022, 10, 18)
    state = cadre_ussel.parties.get(nature="etat")
    assert state.role == Partie.Role.SIGNATAIRE
    assert state.date_signature is None


def test_chef_de_projet_may_neither_add_nor_remove_the_state(client_for, cdp_ussel, cadre_ussel):
    client = client_for(cdp_ussel)
    url = reverse("conventions:parties", args=[cadre_ussel.pk])
    assert 'name="parties-0-DELETE"' in page(client, url)  # a commune may be removed…
    etat = etat_index(cadre_ussel)
    assert f'name="parties-{etat}-DELETE"' not in page(client, url)  # …not the État
    assert (
        client.post(url, parties_data(cadre_ussel, **{f"{etat}__DELETE": "on"})).status_code == 302
    )
    data = parties_data(cadre_ussel, **{"0__nature": "etat", "0__commune": ""})
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Sélectionnez un choix valide" in html.unescape(response.content.decode())
    assert cadre_ussel.parties.filter(nature="etat").count() == 1
    assert cadre_ussel.parties.filter(nature="commune").count() == 1


def test_prefecture_demotes_the_state_and_records_its_date(client_for, prefecture_19, cadre_ussel):
    client = client_for(prefecture_19)
    url = reverse("conventions:parties", args=[cadre_ussel.pk])
    etat = etat_index(cadre_ussel)
    data = parties_data(cadre_ussel, **{f"{etat}__date_signature": "2022-10-20"})
    assert client.post(url, data).status_code == 302
    assert cadre_ussel.parties.get(nature="etat").date_signature == date(2022, 10, 20)
    data = parties_data(
        cadre_ussel, **{f"{etat}__role": "en_presence", f"{etat}__date_signature": ""}
    )
    assert client.post(url, data).status_code == 302
    assert cadre_ussel.parties.get(nature="etat").role == Partie.Role.EN_PRESENCE


# Marking signed, terminating ----------------------------------------------------------------


def test_marking_signed_needs_the_signed_scan(client_for, cdp_ussel, prefecture_19, cadre_ussel):
    sign_all(cadre_ussel)
    cadre_ussel.scans.all().delete()
    prefecture = client_for(prefecture_19)
    url = reverse("conventions:signer", args=[cadre_ussel.pk])
    response = prefecture.post(url, follow=True)
    assert "Déposez la convention signée (scan)" in html.unescape(response.content.decode())
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.BROUILLON
    assert cadre_ussel.date_signature is None
    client_for(cdp_ussel).post(
        reverse("conventions:upload-scan", args=[cadre_ussel.pk]),
        {"fichier": SimpleUploadedFile("signee.pdf", PDF, content_type="application/pdf")},
    )
    assert ScanSigne.objects.filter(convention=cadre_ussel).count() == 1
    client_for(prefecture_19).post(url)
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.SIGNEE


def test_terminating_asks_a_motif_then_shows_it(client_for, prefecture_19, cadre_ussel):
    signed(cadre_ussel)
    client = client_for(prefecture_19)
    url = reverse("conventions:resilier", args=[cadre_ussel.pk])
    content = page(client, url)
    assert "Ce que fait la résiliation" in content
    assert "ne pourra plus être modifiée" in content
    response = client.post(url, {"date": "2024-01-10", "motif": "   "})
    assert response.status_code == 200
    assert "Indiquez le motif de la résiliation." in html.unescape(response.content.decode())
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.SIGNEE
    motif = "Fusion des communes <script>alert(1)</script>"
    response = client.post(url, {"date": "2024-01-10", "motif": motif})
    assert response.status_code == 302
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.RESILIEE
    assert cadre_ussel.date_fin == date(2024, 1, 10)
    assert cadre_ussel.motif_resiliation == motif
    detail = client.get(reverse("conventions:detail", args=[cadre_ussel.pk])).content.decode()
    assert "Motif de la résiliation" in detail
    assert "Fusion des communes &lt;script&gt;" in detail
    assert "<script>alert(1)" not in detail


def test_a_draft_cannot_be_terminated(client_for, national, cadre_ussel):
    url = reverse("conventions:resilier", args=[cadre_ussel.pk])
    response = client_for(national).post(url, {"date": "2024-01-10", "motif": "Erreur"})
    assert response.status_code == 302
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.BROUILLON
    assert cadre_ussel.motif_resiliation == ""


def test_other_prefecture_gets_404_on_terminating(client_for, prefecture_36, cadre_ussel):
    signed(cadre_ussel)
    url = reverse("conventions:resilier", args=[cadre_ussel.pk])
    assert client_for(prefecture_36).get(url).status_code == 404
    assert client_for(prefecture_36).post(url, {"motif": "x"}).status_code == 404
