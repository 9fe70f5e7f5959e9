"""Issue 20: the posts' rules checked on what is stored, inside the transaction that writes;
double submissions and hostile values as French form errors, never a 500."""

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse

from postes.forms import OccupationForm
from postes.models import CofinancementAnnee, LigneCofinancement, Occupation, Poste

from .conftest import cofinancement_data, make_poste
from .test_postes import prise_de_poste, text

pytestmark = pytest.mark.django_db


def url_create(poste) -> str:
    return reverse("postes:cofinancement-create", kwargs={"pk": poste.pk})


def stored_year(poste, annee=2024, cout="53000", **lignes) -> CofinancementAnnee:
    year = CofinancementAnnee.objects.create(poste=poste, annee=annee, cout_charge=Decimal(cout))
    for financeur, notifie in lignes.items():
        LigneCofinancement.objects.create(
            annee=year,
            financeur=financeur,
            montant_demande=notifie,
            montant_notifie=notifie,
            date_notification=date(annee, 4, 15),
        )
    return year


def only_rows(data: dict, *financeurs: str) -> dict:
    """The POST data with only the rows of these funders, renumbered (a forged form)."""
    rows = {}
    for i in range(4):
        if data[f"lignes-{i}-financeur"] in financeurs:
            n = len(rows) // 6
            for key in [k for k in data if k.startswith(f"lignes-{i}-")]:
                rows[key.replace(f"lignes-{i}-", f"lignes-{n}-")] = data[key]
    kept = {k: v for k, v in data.items() if not k.startswith("lignes-") or "FORMS" in k}
    return kept | rows | {"lignes-TOTAL_FORMS": len(financeurs)}


# 2. The co-financing ceiling, on every stored line of the year ---------------------------------


def test_rows_left_out_of_the_form_still_count_against_the_ceiling(
    client_for, prefecture_19, poste_ussel
):
    """The finding: BdT and État rows left out (lignes-TOTAL_FORMS=2) saved 54 750 € against
    a 39 750 € ceiling (75 % of 53 000 €)."""
    year = stored_year(poste_ussel, bdt=15000, etat=10000)
    data = cofinancement_data(2024, "53000", anct=(29750, 29750, 0))
    data = only_rows(data, "anct", "anah")
    url = reverse("postes:cofinancement-update", kwargs={"pk": poste_ussel.pk, "annee_pk": year.pk})
    response = client_for(prefecture_19).post(url, data)
    assert response.status_code == 200
    page = text(response)
    assert "Le total notifié pour 2024 (54 750 €) dépasse le plafond de 39 750 €" in page
    assert not year.lignes.filter(financeur="anct").exists()
    assert sum(li.montant_notifie for li in year.lignes.all()) == 25000


def test_a_post_without_the_anah_row_keeps_the_stored_lines(client_for, prefecture_19, poste_ussel):
    data = only_rows(
        cofinancement_data(2024, "53000", anct=(20000, 20000, 0)), "anct", "bdt", "etat"
    )
    response = client_for(prefecture_19).post(url_create(poste_ussel), data)
    assert response.status_code == 302
    year = CofinancementAnnee.objects.get()
    assert [(li.financeur, li.montant_notifie) for li in year.lignes.all()] == [("anct", 20000)]


def test_a_token_anah_line_does_not_open_the_higher_ceiling(client_for, prefecture_19, poste_ussel):
    """Rule: the « avec Anah » ceilings apply when the Anah line is at least 10 % of the
    loaded cost (notified, else requested)."""
    client = client_for(prefecture_19)
    data = cofinancement_data(2024, "80000", anct=(50000, 50000, 0), anah=(0.01, 0.01, 0))
    page = text(client.post(url_create(poste_ussel), data))
    assert "Le total notifié pour 2024 (50 000,01 €) dépasse le plafond de 45 000 €" in page
    assert not CofinancementAnnee.objects.exists()
    data = cofinancement_data(2024, "80000", anct=(40000, 40000, 0), anah=(10000, 10000, 0))
    assert client.post(url_create(poste_ussel), data).status_code == 302
    assert CofinancementAnnee.objects.get().lignes.count() == 2


def test_the_anah_rule():
    from postes.models import avec_anah

    def ligne(notifie, demande=0):
        return LigneCofinancement(
            financeur="anah", montant_notifie=notifie, montant_demande=demande
        )

    cout = Decimal("80000")
    assert not avec_anah(cout, [])
    assert not avec_anah(cout, [ligne(Decimal("0.01"))])
    assert not avec_anah(cout, [ligne(Decimal("7999.99"))])
    assert avec_anah(cout, [ligne(Decimal("8000"))])
    assert avec_anah(cout, [ligne(0, Decimal("9000"))])


def test_a_forged_funder_is_refused_with_a_message(client_for, prefecture_19, poste_ussel):
    data = cofinancement_data(2024, "53000", anct=(1000, 1000, 0))
    data["lignes-3-financeur"] = "mairie"
    response = client_for(prefecture_19).post(url_create(poste_ussel), data)
    assert response.status_code == 200
    assert "Ce financeur n'est pas un cofinanceur du poste." in text(response)
    assert not CofinancementAnnee.objects.exists()


def test_a_funder_twice_is_refused(client_for, prefecture_19, poste_ussel):
    data = cofinancement_data(2024, "53000", anct=(1000, 1000, 0))
    data["lignes-3-financeur"] = "anct"
    page = text(client_for(prefecture_19).post(url_create(poste_ussel), data))
    assert "ANCT figure deux fois : une ligne par financeur." in page
    assert not CofinancementAnnee.objects.exists()


# 3. A second year of co-financing: a form error ------------------------------------------------


def test_a_second_cofinancing_for_the_same_year_is_a_form_error(
    client_for, prefecture_19, poste_ussel
):
    stored_year(poste_ussel, anct=1000)
    data = cofinancement_data(2024, "53000", anct=(2000, 2000, 0))
    response = client_for(prefecture_19).post(url_create(poste_ussel), data)
    assert response.status_code == 200
    assert "Ce poste a déjà un cofinancement pour cette année." in text(response)
    assert CofinancementAnnee.objects.count() == 1


# 4. Hostile values: form errors, never 500 -----------------------------------------------------


def test_an_offer_link_over_200_characters_is_refused(client_for, prefecture_36, poste_le_blanc):
    url = reverse("postes:etat", kwargs={"pk": poste_le_blanc.pk})
    response = client_for(prefecture_36).post(
        url,
        {
            "nouvel_etat": "en_recrutement",
            "date": "2024-05-02",
            "date_publication": "2024-05-02",
            "lien_offre": "https://example.fr/" + "a" * 190,
        },
    )
    assert response.status_code == 200
    assert "200 caractères" in text(response)
    poste_le_blanc.refresh_from_db()
    assert poste_le_blanc.etat == Poste.Etat.A_CREER


def test_a_departure_in_9999_is_refused(client_for, prefecture_19, poste_ussel):
    occupation = poste_ussel.occupations.get()
    response = client_for(prefecture_19).post(
        reverse("postes:depart", kwargs={"pk": occupation.pk}),
        {"date_fin": "9999-12-31", "motif_fin": "Fin de contrat"},
    )
    assert response.status_code == 200
    assert "Indiquez une date entre 1950 et 2100" in text(response)
    occupation.refresh_from_db()
    assert occupation.date_fin is None


def test_a_rate_over_100_is_a_french_message(client_for, national, regles):
    response = client_for(national).post(
        reverse("postes:regle-create"),
        {
            "libelle": "Règle d'essai",
            "financeur": "",
            "condition": "toujours",
            "date_debut": "2030-01-01",
            "taux": "101",
            "plafond_annuel": "1000",
            "source": "Essai",
        },
    )
    assert response.status_code == 200
    assert "Le taux va de 0 à 100 %." in text(response)


def test_a_second_prise_de_poste_overlapping_the_first_is_refused(
    client_for, prefecture_36, poste_le_blanc
):
    client = client_for(prefecture_36)
    assert prise_de_poste(client, poste_le_blanc, inviter="").status_code == 302
    response = prise_de_poste(client, poste_le_blanc, inviter="", prenom="Marc")
    assert "chevauchent l'occupation de Léa Durand" in text(response)
    assert poste_le_blanc.occupations.count() == 1


# 2. Two « Prise de poste » at the same time: one occupation ------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_prises_de_poste_create_one_occupation(prefecture_36, le_blanc):
    poste = make_poste(le_blanc, siren=le_blanc.epci_id, employeur="CC Brenne - Val de Creuse")
    forms = []
    for prenom in ("Lea", "Marc"):
        form = OccupationForm(
            {
                "prenom": prenom,
                "nom": "Durand",
                "email": f"{prenom.lower()}@example.fr",
                "date_debut": "2024-09-02",
            },
            poste=Poste.objects.get(pk=poste.pk),
        )
        forms.append(form)
    # Both were checked before either was saved: the overlap check of the form passes twice.
    assert all(form.is_valid() for form in forms), [form.errors for form in forms]
    barrier = threading.Barrier(2)
    results = {}

    def take(i, form):
        try:
            barrier.wait(timeout=10)
            results[i] = form.save(by=prefecture_36)
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(i, form)) for i, form in enumerate(forms)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert Occupation.objects.filter(poste=poste).count() == 1
    assert sorted(r is None for r in results.values()) == [False, True]
    refused = next(forms[i] for i, r in results.items() if r is None)
    assert "chevauchent" in str(refused.non_field_errors())


# 3. One object per create form, whatever the clicks -------------------------------------------


def jeton(client, url: str) -> str:
    """The one-time token of the blank form the page gives."""
    form = client.get(url).context["form"]
    return str(form.initial["jeton_envoi"])


def test_a_double_click_on_a_new_post_creates_one_post(client_for, prefecture_36, le_blanc, regles):
    client = client_for(prefecture_36)
    url = reverse("postes:create")
    data = {
        "beneficiaires": [le_blanc.pk],
        "intitule": "Cheffe de projet PVD",
        "employeur_siren": le_blanc.epci_id,
        "type_contrat": "contrat_projet",
        "etp": "1",
        "date_creation": "2024-01-15",
        "jeton_envoi": jeton(client, url),
    }
    assert client.post(url, data).status_code == 302
    second = client.post(url, data)
    assert second.status_code == 200
    assert "Ce formulaire avait déjà été envoyé" in text(second)
    assert Poste.objects.filter(intitule="Cheffe de projet PVD").count() == 1
    # A new blank form is a new post.
    data["jeton_envoi"] = jeton(client, url)
    assert client.post(url, data).status_code == 302
    assert Poste.objects.filter(intitule="Cheffe de projet PVD").count() == 2


def test_a_double_click_on_a_new_rule_creates_one_rule(client_for, national, regles):
    from postes.models import RegleCofinancement

    client = client_for(national)
    url = reverse("postes:regle-create")
    data = {
        "libelle": "Règle 2030",
        "financeur": "",
        "condition": "toujours",
        "date_debut": "2030-01-01",
        "taux": "50",
        "plafond_annuel": "30000",
        "source": "Circulaire",
        "jeton_envoi": jeton(client, url),
    }
    assert client.post(url, data).status_code == 302
    assert "Ce formulaire avait déjà été envoyé" in text(client.post(url, data))
    assert RegleCofinancement.objects.filter(libelle="Règle 2030").count() == 1


def test_a_form_refused_keeps_its_token_for_the_corrected_submission(client_for, national, regles):
    from postes.models import RegleCofinancement

    client = client_for(national)
    url = reverse("postes:regle-create")
    data = {
        "libelle": "Règle 2031",
        "condition": "toujours",
        "date_debut": "2031-01-01",
        "taux": "150",
        "plafond_annuel": "30000",
        "source": "Circulaire",
        "jeton_envoi": jeton(client, url),
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert str(response.context["form"]["jeton_envoi"].value()) == data["jeton_envoi"]
    data["taux"] = "50"
    assert client.post(url, data).status_code == 302
    assert RegleCofinancement.objects.filter(libelle="Règle 2031").count() == 1


def test_a_double_click_on_a_cofinancing_year_saves_it_once(client_for, prefecture_19, poste_ussel):
    client = client_for(prefecture_19)
    url = url_create(poste_ussel)
    data = cofinancement_data(2024, "53000", anct=(1000, 1000, 0))
    data["jeton_envoi"] = jeton(client, url)
    assert client.post(url, data).status_code == 302
    assert "Ce formulaire avait déjà été envoyé" in text(client.post(url, data))
    assert CofinancementAnnee.objects.count() == 1


def test_another_users_token_is_not_a_shortcut(client_for, national, prefecture_36, regles):
    """The token names a submission of its user only."""
    from postes.models import RegleCofinancement

    client = client_for(national)
    url = reverse("postes:regle-create")
    data = {
        "libelle": "Règle 2032",
        "condition": "toujours",
        "date_debut": "2032-01-01",
        "taux": "50",
        "plafond_annuel": "30000",
        "source": "Circulaire",
        "jeton_envoi": jeton(client, url),
    }
    assert client.post(url, data).status_code == 302
    assert RegleCofinancement.objects.filter(libelle="Règle 2032").count() == 1
    assert client_for(prefecture_36).post(url, data).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_two_tabs_sending_the_same_new_post_at_once_create_one(prefecture_36, le_blanc, regles):
    from django.test import Client

    url = reverse("postes:create")
    client = Client()
    client.force_login(prefecture_36)
    data = {
        "beneficiaires": [le_blanc.pk],
        "intitule": "Chef de projet partagé",
        "employeur_siren": le_blanc.epci_id,
        "type_contrat": "contrat_projet",
        "etp": "1",
        "date_creation": "2024-01-15",
        "jeton_envoi": jeton(client, url),
    }
    barrier = threading.Barrier(2)
    responses = {}

    def send(i):
        tab = Client()
        tab.force_login(prefecture_36)
        try:
            barrier.wait(timeout=10)
            responses[i] = tab.post(url, data)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert Poste.objects.filter(intitule="Chef de projet partagé").count() == 1
    poste = Poste.objects.get(intitule="Chef de projet partagé")
    detail = reverse("postes:detail", kwargs={"pk": poste.pk})
    # Each tab ends on the post: the first created it, the second was sent to it (or, had it
    # arrived after the first one's commit, told in French that the form was already sent).
    for response in responses.values():
        assert response.status_code in (200, 302)
        if response.status_code == 302:
            assert response["Location"] == detail
        else:
            assert "Ce formulaire avait déjà été envoyé" in text(response)
