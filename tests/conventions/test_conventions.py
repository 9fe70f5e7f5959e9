import html
from datetime import date, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from communes.models import Beneficiaire
from conventions.models import Convention, Partie, ScanSigne, SecteurIntervention
from tests.factories import UserFactory
from tests.pdfs import clean_pdf

pytestmark = pytest.mark.django_db

PDF = clean_pdf()


def page(client, url) -> str:
    return html.unescape(client.get(url).content.decode())


def attach_scan(convention) -> ScanSigne:
    """The signed convention, scanned: needed before it is marked signed."""
    return ScanSigne.objects.create(
        convention=convention,
        fichier=SimpleUploadedFile("signee.pdf", PDF, content_type="application/pdf"),
        nom_original="signee.pdf",
        taille=len(PDF),
        sha256="0" * 64,
        uploaded_by=UserFactory(email="depot@test.pvd.fr"),
    )


def sign_all(convention, on=date(2022, 10, 18)):
    attach_scan(convention)
    convention.parties.filter(role="signataire").update(date_signature=on)
    SecteurIntervention.objects.get_or_create(
        convention=convention,
        commune_id="19275",
        nom="Centre-ville d'Ussel",
        defaults={"centre_ville_principale": True},
    )


# Lifecycle ------------------------------------------------------------------------------


def test_signed_needs_every_signataire_date(cadre_ussel):
    with pytest.raises(ValidationError) as error:
        cadre_ussel.mark_signed()
    assert "Il manque la date de signature de : Commune d'Ussel" in str(error.value)
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.BROUILLON


def test_a_cadre_needs_the_centre_of_the_main_town(cadre_ussel):
    cadre_ussel.parties.filter(role="signataire").update(date_signature=date(2022, 10, 18))
    with pytest.raises(ValidationError, match="centre-ville de la ville principale"):
        cadre_ussel.mark_signed()


def test_signature_dates_the_convention_and_its_end(cadre_ussel):
    sign_all(cadre_ussel)
    cadre_ussel.parties.filter(nature="etat").update(date_signature=date(2022, 10, 25))
    cadre_ussel.duree_annees = 5
    cadre_ussel.save()
    cadre_ussel.mark_signed()
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.SIGNEE
    assert cadre_ussel.date_signature == date(2022, 10, 25)
    assert cadre_ussel.date_fin == date(2027, 10, 25)


def test_an_avenant_marks_the_convention_modified(client_for, cdp_ussel, cadre_ussel):
    sign_all(cadre_ussel)
    cadre_ussel.mark_signed()
    client = client_for(cdp_ussel)
    response = client.post(
        reverse("conventions:create", args=[cadre_ussel.beneficiaire_id]),
        {
            "type": "avenant",
            "convention_modifiee": cadre_ussel.pk,
            "objet": "Ajout d'un secteur à La Courtine",
            "date_redaction": "2024-01-10",
        },
    )
    assert response.status_code == 302
    avenant = Convention.objects.get(type="avenant")
    assert avenant.convention_modifiee == cadre_ussel
    avenant.parties.filter(role="signataire").update(date_signature=date(2024, 3, 1))
    attach_scan(avenant)
    avenant.mark_signed()
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.MODIFIEE


def test_an_avenant_to_another_beneficiary_is_refused(client_for, national, cadre_ussel):
    sign_all(cadre_ussel)
    cadre_ussel.mark_signed()
    le_blanc = Beneficiaire.objects.get(nom="Le Blanc")
    response = client_for(national).post(
        reverse("conventions:create", args=[le_blanc.pk]),
        {"type": "avenant", "convention_modifiee": cadre_ussel.pk, "date_redaction": "2024-01-10"},
    )
    assert response.status_code == 200
    assert "Sélectionnez un choix valide" in html.unescape(response.content.decode())
    assert not Convention.objects.filter(type="avenant").exists()


def test_an_end_before_the_start_is_refused(client_for, cdp_ussel, ussel_la_courtine):
    response = client_for(cdp_ussel).post(
        reverse("conventions:create", args=[ussel_la_courtine.pk]),
        {
            "type": "adhesion",
            "date_redaction": "2021-05-01",
            "date_entree_vigueur": "2021-06-01",
            "date_fin": "2020-01-01",
        },
    )
    assert response.status_code == 200
    assert "La date de fin ne peut pas précéder" in html.unescape(response.content.decode())
    assert not Convention.objects.exists()


def test_creation_proposes_the_usual_signatories(client_for, cdp_ussel, ussel_la_courtine):
    response = client_for(cdp_ussel).post(
        reverse("conventions:create", args=[ussel_la_courtine.pk]),
        {"type": "adhesion", "date_redaction": "2021-05-01"},
    )
    convention = Convention.objects.get()
    assert response.status_code == 302
    assert convention.titre.startswith("Convention d'adhésion")
    assert [str(p) for p in convention.parties.all()] == [
        "Commune d'Ussel",
        "Commune de La Courtine",
        "CC Haute-Corrèze Communauté",
        "L'État, représenté par le préfet",
    ]
    assert convention.created_by == cdp_ussel


def test_signed_through_the_page_or_refused_with_the_reasons(
    client_for, prefecture_19, cadre_ussel
):
    client = client_for(prefecture_19)
    response = client.post(reverse("conventions:signer", args=[cadre_ussel.pk]), follow=True)
    content = html.unescape(response.content.decode())
    assert "Il manque la date de signature" in content
    assert "Déposez la convention signée (scan)" in content
    sign_all(cadre_ussel)
    client.post(reverse("conventions:signer", args=[cadre_ussel.pk]))
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.SIGNEE


def test_a_signed_convention_is_no_longer_edited(client_for, cdp_ussel, cadre_ussel):
    sign_all(cadre_ussel)
    cadre_ussel.mark_signed()
    client = client_for(cdp_ussel)
    for name in ("update", "parties", "secteurs"):
        assert client.get(reverse(f"conventions:{name}", args=[cadre_ussel.pk])).status_code == 403
    response = client.post(
        reverse("conventions:update", args=[cadre_ussel.pk]), {"titre": "Autre titre"}
    )
    assert response.status_code == 403
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.titre != "Autre titre"


def test_parties_formset_needs_a_signatory(client_for, prefecture_19, cadre_ussel):
    # The préfecture: only the State may demote the État (see test_convention_rights).
    client = client_for(prefecture_19)
    url = reverse("conventions:parties", args=[cadre_ussel.pk])
    parties = list(cadre_ussel.parties.all())
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
                f"parties-{i}-role": "en_presence",
                f"parties-{i}-ordre": i,
            }
        )
    response = client.post(url, data)
    assert response.status_code == 200
    assert "au moins un signataire" in html.unescape(response.content.decode())
    assert cadre_ussel.parties.filter(role="signataire").count() == 2
    data["parties-0-role"] = "signataire"
    data["parties-0-representant"] = "Mme la maire d'Ussel"
    data["parties-0-date_deliberation"] = "2022-09-30"
    assert client.post(url, data).status_code == 302
    assert cadre_ussel.parties.get(commune_id="19275").date_deliberation == date(2022, 9, 30)


# Who sees and changes what ------------------------------------------------------------------


@pytest.mark.parametrize("who", ["cdp_ussel", "prefecture_19", "national"])
def test_editors(request, client_for, who, cadre_ussel):
    client = client_for(request.getfixturevalue(who))
    assert client.get(reverse("conventions:update", args=[cadre_ussel.pk])).status_code == 200


@pytest.mark.parametrize("who", ["elu_ussel", "partenaire"])
def test_readers_get_403_on_changes(request, client_for, who, cadre_ussel):
    client = client_for(request.getfixturevalue(who))
    assert client.get(reverse("conventions:detail", args=[cadre_ussel.pk])).status_code == 200
    assert client.get(reverse("conventions:update", args=[cadre_ussel.pk])).status_code == 403
    for name in ("envoyer", "signer", "generate"):
        response = client.post(reverse(f"conventions:{name}", args=[cadre_ussel.pk]))
        assert response.status_code == 403
    url = reverse("conventions:create", args=[cadre_ussel.beneficiaire_id])
    assert client.get(url).status_code == 403
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.BROUILLON


@pytest.mark.parametrize("who", ["prefecture_36", "sans_role"])
def test_other_territory_gets_404(request, client_for, who, cadre_ussel):
    client = client_for(request.getfixturevalue(who))
    for name in ("detail", "update", "documents"):
        assert client.get(reverse(f"conventions:{name}", args=[cadre_ussel.pk])).status_code == 404
    assert client.post(reverse("conventions:signer", args=[cadre_ussel.pk])).status_code == 404
    url = reverse("conventions:create", args=[cadre_ussel.beneficiaire_id])
    assert client.get(url).status_code == 404


def test_chef_de_projet_only_drafts_for_their_beneficiary(client_for, cdp_ussel):
    bort = Beneficiaire.objects.get(nom="Bort-les-Orgues – Neuvic")
    response = client_for(cdp_ussel).get(reverse("conventions:create", args=[bort.pk]))
    assert response.status_code == 404


def test_list_is_scoped(client_for, prefecture_36, prefecture_19, cadre_ussel):
    assert cadre_ussel in client_for(prefecture_19).get("/conventions/").context["object_list"]
    assert not client_for(prefecture_36).get("/conventions/").context["object_list"]


# Signed scans ---------------------------------------------------------------------------


def test_signed_scan_is_stored_with_its_uploader(client_for, cdp_ussel, cadre_ussel):
    client = client_for(cdp_ussel)
    upload = SimpleUploadedFile("convention signée.pdf", PDF, content_type="application/pdf")
    client.post(reverse("conventions:upload-scan", args=[cadre_ussel.pk]), {"fichier": upload})
    scan = ScanSigne.objects.get()
    assert scan.uploaded_by == cdp_ussel
    assert scan.nom_original == "convention signée.pdf"
    assert len(scan.sha256) == 64
    response = client.get(reverse("conventions:download-scan", args=[scan.pk]))
    assert b"".join(response.streaming_content) == PDF


@pytest.mark.parametrize(
    "content, message",
    [
        (b"GIF89a not a pdf at all", "pas un PDF valide"),
        (PDF.replace(b"%%EOF", b"") + b"x" * 100, "pas un PDF valide"),
        (PDF[:-6] + b"0" * (20 * 1024 * 1024 + 1) + b"%%EOF\n", "la limite est de 20"),
    ],
)
def test_bad_scans_are_refused_and_nothing_is_stored(
    client_for, cdp_ussel, cadre_ussel, content, message
):
    upload = SimpleUploadedFile("scan.pdf", content, content_type="application/pdf")
    response = client_for(cdp_ussel).post(
        reverse("conventions:upload-scan", args=[cadre_ussel.pk]), {"fichier": upload}, follow=True
    )
    assert message in html.unescape(response.content.decode())
    assert not ScanSigne.objects.exists()


def test_scan_of_another_territory_is_404(client_for, cdp_ussel, prefecture_36, cadre_ussel):
    client_for(cdp_ussel).post(
        reverse("conventions:upload-scan", args=[cadre_ussel.pk]),
        {"fichier": SimpleUploadedFile("s.pdf", PDF)},
    )
    scan = ScanSigne.objects.get()
    response = client_for(prefecture_36).get(reverse("conventions:download-scan", args=[scan.pk]))
    assert response.status_code == 404


# Deadlines ------------------------------------------------------------------------------------


def adhesion(beneficiaire, signed_on):
    convention = Convention.objects.create(
        beneficiaire=beneficiaire, type="adhesion", titre="Adhésion"
    )
    Partie.objects.create(convention=convention, nature="etat", role="signataire",
                          date_signature=signed_on)  # fmt: skip
    attach_scan(convention)
    convention.mark_signed()
    return convention


@pytest.mark.usefixtures("today")
def test_echeances_list_late_and_soon_only(client_for, prefecture_36, territoires):
    today = timezone.localdate()
    adhesion(Beneficiaire.objects.get(nom="Le Blanc"), date(2021, 6, 1))  # late
    adhesion(Beneficiaire.objects.get(nom="Déols"), today - relativedelta(months=16))  # soon
    adhesion(Beneficiaire.objects.get(nom="Vatan"), today - relativedelta(months=6))  # later
    response = client_for(prefecture_36).get(reverse("conventions:echeances"))
    lignes = dict((b.nom, e) for b, e in response.context["lignes"])
    assert set(lignes) == {"Le Blanc", "Déols"}
    assert lignes["Le Blanc"].en_retard
    assert lignes["Le Blanc"].date_limite == date(2022, 12, 1)
    assert lignes["Déols"].proche and lignes["Déols"].mois_restants == 2


def test_echeances_exclude_signed_cadres_and_other_departements(
    client_for, prefecture_19, cadre_ussel
):
    adhesion(cadre_ussel.beneficiaire, date(2021, 6, 1))
    bort = Beneficiaire.objects.get(nom="Bort-les-Orgues – Neuvic")
    adhesion(bort, date(2021, 6, 1))
    adhesion(Beneficiaire.objects.get(nom="Le Blanc"), date(2021, 6, 1))
    sign_all(cadre_ussel)
    cadre_ussel.mark_signed()
    response = client_for(prefecture_19).get(reverse("conventions:echeances"))
    assert [b.nom for b, _ in response.context["lignes"]] == ["Bort-les-Orgues – Neuvic"]


@pytest.mark.usefixtures("today")
def test_beneficiary_page_shows_due_date_and_months(client_for, cdp_ussel, ussel_la_courtine):
    adhesion(ussel_la_courtine, timezone.localdate() - relativedelta(months=12))
    url = reverse("communes:beneficiaire-detail", args=[ussel_la_courtine.pk])
    response = client_for(cdp_ussel).get(url)
    echeance = response.context["echeance"]
    assert echeance.mois_restants == 6
    expected = echeance.date_limite.strftime("%d/%m/%Y")
    assert expected in page(client_for(cdp_ussel), url)


def test_sent_for_signature_on_a_given_date(client_for, cdp_ussel, cadre_ussel):
    SecteurIntervention.objects.create(
        convention=cadre_ussel, commune_id="19275", nom="Centre", centre_ville_principale=True
    )
    url = reverse("conventions:envoyer", args=[cadre_ussel.pk])
    client_for(cdp_ussel).post(url, {"date": "2022-09-01"})
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.EN_SIGNATURE
    assert cadre_ussel.date_envoi_signature == date(2022, 9, 1)


@pytest.mark.usefixtures("today")
def test_a_signed_convention_without_date_gets_its_date(client_for, prefecture_19, cadre_ussel):
    Convention.objects.filter(pk=cadre_ussel.pk).update(statut="signee", duree_annees=6)
    client = client_for(prefecture_19)
    future = (timezone.localdate() + relativedelta(days=2)).isoformat()
    client.post(reverse("conventions:dater", args=[cadre_ussel.pk]), {"date": future})
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.date_signature is None
    client.post(reverse("conventions:dater", args=[cadre_ussel.pk]), {"date": "2022-10-18"})
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.date_signature == date(2022, 10, 18)
    assert cadre_ussel.date_fin == date(2028, 10, 18)
    # Once dated, the date is part of the signed record: it is not changed again.
    client.post(reverse("conventions:dater", args=[cadre_ussel.pk]), {"date": "2022-10-20"})
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.date_signature == date(2022, 10, 18)


def test_expired_session_during_polling_reloads_on_the_login_page(client, cadre_ussel):
    response = client.get(
        reverse("conventions:documents", args=[cadre_ussel.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(reverse("account_login"))


def test_stalled_generations_are_marked_failed(cadre_ussel):
    from datetime import timedelta

    from conventions.models import DocumentConvention
    from pvd.tasks import fail_stalled_jobs

    old = DocumentConvention.objects.create(convention=cadre_ussel, version=1)
    recent = DocumentConvention.objects.create(convention=cadre_ussel, version=2)
    DocumentConvention.objects.filter(pk=old.pk).update(
        requested_at=timezone.now() - timedelta(hours=1)
    )
    assert fail_stalled_jobs() == 1
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.statut == "echec" and recent.statut == "en_cours"


def test_in_force_and_ending_soon_are_one_rule(ussel_la_courtine):
    from conventions.models import STATUTS_EN_VIGUEUR, en_vigueur_q

    day = date(2026, 3, 16)
    for statut in Convention.Statut.values:
        for fin in (date(2026, 3, 15), date(2026, 3, 16), date(2026, 9, 16), date(2026, 9, 17)):
            Convention.objects.create(
                beneficiaire=ussel_la_courtine,
                type=Convention.Type.ADHESION,
                titre=f"{statut} {fin}",
                statut=statut,
                date_fin=fin,
            )
    conventions = Convention.objects.filter(beneficiaire=ussel_la_courtine)
    assert (
        set(conventions.en_vigueur().values_list("statut", flat=True))
        == {
            "signee",
            "modifiee",
        }
        == set(STATUTS_EN_VIGUEUR)
    )
    assert sorted(conventions.finissantes(day).values_list("titre", flat=True)) == [
        "modifiee 2026-03-16",
        "modifiee 2026-09-16",
        "signee 2026-03-16",
        "signee 2026-09-16",
    ]
    # The same from a beneficiary, through the prefix.
    assert Beneficiaire.objects.filter(
        en_vigueur_q("conventions__"), pk=ussel_la_courtine.pk
    ).exists()
    assert [c.is_resiliable for c in conventions.order_by("pk")] == [
        c.statut in STATUTS_EN_VIGUEUR for c in conventions.order_by("pk")
    ]


# Signatures happened: never in the future ------------------------------------------------------


def test_a_signature_dated_in_the_future_is_refused_by_the_form(
    client_for, prefecture_19, cadre_ussel, today
):
    url = reverse("conventions:parties", args=[cadre_ussel.pk])
    parties = list(cadre_ussel.parties.all())
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
                f"parties-{i}-ordre": i,
                f"parties-{i}-date_signature": "",
            }
        )
    data["parties-0-date_signature"] = (today + timedelta(days=3)).isoformat()
    response = client_for(prefecture_19).post(url, data)
    assert response.status_code == 200
    assert "Cette date est dans le futur" in html.unescape(response.content.decode())
    assert not cadre_ussel.parties.exclude(date_signature=None).exists()


def test_a_convention_is_not_marked_signed_on_a_future_date(cadre_ussel, today):
    sign_all(cadre_ussel, on=today + timedelta(days=3))
    with pytest.raises(ValidationError, match="dans le futur"):
        cadre_ussel.mark_signed()
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.statut == Convention.Statut.BROUILLON
    assert cadre_ussel.date_signature is None


def test_a_signature_date_completed_later_is_not_in_the_future(cadre_ussel, today):
    Convention.objects.filter(pk=cadre_ussel.pk).update(statut=Convention.Statut.SIGNEE)
    cadre_ussel.refresh_from_db()
    with pytest.raises(ValidationError, match="dans le futur"):
        cadre_ussel.complete_signature_date(today + timedelta(days=1))
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.date_signature is None


def test_the_signature_keeps_its_own_date_apart_from_who_recorded_it_and_when(
    client_for, prefecture_19, cadre_ussel
):
    sign_all(cadre_ussel, on=date(2022, 10, 18))
    client = client_for(prefecture_19)
    client.post(reverse("conventions:signer", args=[cadre_ussel.pk]))
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.date_signature == date(2022, 10, 18)
    assert cadre_ussel.signature_enregistree_par == prefecture_19
    assert timezone.localdate(cadre_ussel.signature_enregistree_le) == timezone.localdate()
    page = client.get(reverse("conventions:detail", args=[cadre_ussel.pk])).content.decode()
    assert f"(enregistrée le {timezone.localdate():%d/%m/%Y} par" in page


def test_the_data_migration_dates_past_recordings_from_the_timestamps(cadre_ussel):
    from importlib import import_module

    from django.apps import apps

    Convention.objects.filter(pk=cadre_ussel.pk).update(
        statut=Convention.Statut.SIGNEE, date_signature=date(2022, 10, 18)
    )
    import_module("conventions.migrations.0008_fill_signature_recorded").fill(apps, None)
    cadre_ussel.refresh_from_db()
    assert cadre_ussel.signature_enregistree_le == cadre_ussel.updated_at
    assert cadre_ussel.signature_enregistree_par is None


def test_a_double_click_on_a_new_convention_creates_one(
    client_for, prefecture_19, ussel_la_courtine
):
    from conventions.models import Convention

    client = client_for(prefecture_19)
    url = reverse("conventions:create", args=[ussel_la_courtine.pk])
    form = client.get(url).context["form"]
    before = Convention.objects.filter(beneficiaire=ussel_la_courtine).count()
    data = {
        "type": "adhesion",
        "date_redaction": "2021-05-01",
        "jeton_envoi": str(form.initial["jeton_envoi"]),
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors
    assert "Ce formulaire avait déjà été envoyé" in html.unescape(
        client.post(url, data).content.decode()
    )
    assert Convention.objects.filter(beneficiaire=ussel_la_courtine).count() == before + 1
