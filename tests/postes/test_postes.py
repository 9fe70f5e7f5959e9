import html
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from auditlog.models import LogEntry
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from communes.models import Beneficiaire
from postes.invitations import end_due_roles
from postes.models import (
    ChangementEtat,
    CofinancementAnnee,
    LigneCofinancement,
    Occupation,
    Poste,
    RegleCofinancement,
)
from pvd import policy
from pvd.models import Role
from tests.pdfs import clean_pdf
from tests.postes.conftest import cofinancement_data, make_poste, occupe

pytestmark = pytest.mark.django_db

PDF = clean_pdf()


def text(response) -> str:
    return " ".join(html.unescape(response.content.decode()).replace("\xa0", " ").split())


# Rights: one table ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, sees, manages",
    [
        ("national", True, True),
        ("prefecture_19", True, True),
        ("prefecture_36", False, False),
        ("cdp_ussel", True, False),
        ("elu_ussel", True, False),
        ("elu_epci", True, False),
        ("partenaire", True, False),
        ("sans_role", False, False),
    ],
)
def test_who_reads_and_who_manages_the_ussel_post(request, poste_ussel, who, sees, manages):
    user = request.getfixturevalue(who)
    assert Poste.objects.for_user(user).filter(pk=poste_ussel.pk).exists() is sees
    assert policy.may_manage_post(user, poste_ussel) is manages


def test_other_territory_gets_404_everywhere(client_for, prefecture_36, poste_ussel):
    client = client_for(prefecture_36)
    occupation = poste_ussel.occupations.get()
    for url in (
        reverse("postes:detail", kwargs={"pk": poste_ussel.pk}),
        reverse("postes:update", kwargs={"pk": poste_ussel.pk}),
        reverse("postes:etat", kwargs={"pk": poste_ussel.pk}),
        reverse("postes:occupation-create", kwargs={"pk": poste_ussel.pk}),
        reverse("postes:depart", kwargs={"pk": occupation.pk}),
        reverse("postes:cofinancement-create", kwargs={"pk": poste_ussel.pk}),
        reverse("postes:fiche", kwargs={"pk": poste_ussel.pk}),
    ):
        assert client.get(url).status_code == 404, url
    assert poste_ussel.employeur_nom not in text(client.get(reverse("postes:list")))


def test_read_only_roles_get_403_on_every_change(client_for, cdp_ussel, elu_ussel, poste_ussel):
    occupation = poste_ussel.occupations.get()
    for user in (cdp_ussel, elu_ussel):
        client = client_for(user)
        assert (
            client.get(reverse("postes:detail", kwargs={"pk": poste_ussel.pk})).status_code == 200
        )
        for url in (
            reverse("postes:update", kwargs={"pk": poste_ussel.pk}),
            reverse("postes:etat", kwargs={"pk": poste_ussel.pk}),
            reverse("postes:occupation-create", kwargs={"pk": poste_ussel.pk}),
            reverse("postes:depart", kwargs={"pk": occupation.pk}),
            reverse("postes:cofinancement-create", kwargs={"pk": poste_ussel.pk}),
            reverse("postes:create"),
            reverse("postes:regle-create"),
        ):
            assert client.get(url).status_code == 403, url
        response = client.post(
            reverse("postes:depart", kwargs={"pk": occupation.pk}),
            {"date_fin": "2025-01-31", "motif_fin": "Mutation"},
        )
        assert response.status_code == 403
    occupation.refresh_from_db()
    assert occupation.date_fin is None


def test_every_form_page_shows_its_title_and_cancels_back(
    client_for, national, poste_ussel, regles
):
    client = client_for(national)
    occupation = poste_ussel.occupations.get()
    detail = reverse("postes:detail", kwargs={"pk": poste_ussel.pk})
    regle = RegleCofinancement.objects.first()
    for url, title, cancel in (
        (reverse("postes:create"), "Nouveau poste de chef de projet", reverse("postes:list")),
        (reverse("postes:update", kwargs={"pk": poste_ussel.pk}), "Modifier le poste", detail),
        (reverse("postes:etat", kwargs={"pk": poste_ussel.pk}), "Étape du recrutement", detail),
        (
            reverse("postes:occupation-create", kwargs={"pk": poste_ussel.pk}),
            "Prise de poste",
            detail,
        ),
        (
            reverse("postes:depart", kwargs={"pk": occupation.pk}),
            "Départ de la personne en poste",
            detail,
        ),
        (
            reverse("postes:cofinancement-create", kwargs={"pk": poste_ussel.pk}),
            "Cofinancement d’une année",
            detail,
        ),
        (reverse("postes:regle-create"), "Nouvelle règle", reverse("postes:regles")),
        (
            reverse("postes:regle-update", kwargs={"pk": regle.pk}),
            regle.libelle,
            reverse("postes:regles"),
        ),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert re.search(rf"<h1>\s*{re.escape(html.escape(title))}\s*</h1>", page), url
        assert f'href="{cancel}">Annuler</a>' in page, url


def test_a_funder_reads_only_its_own_lines(client_for, partenaire, poste_ussel):
    annee = CofinancementAnnee.objects.create(poste=poste_ussel, annee=2024, cout_charge=60000)
    LigneCofinancement.objects.create(annee=annee, financeur="bdt", montant_notifie=11111)
    LigneCofinancement.objects.create(annee=annee, financeur="anct", montant_notifie=22222)
    client = client_for(partenaire)
    page = text(client.get(reverse("postes:detail", kwargs={"pk": poste_ussel.pk})))
    assert "11 111" in page and "22 222" not in page
    page = text(client.get(reverse("postes:list") + "?annee=2024"))
    assert "11 111" in page and "22 222" not in page


# The post and its recruitment ----------------------------------------------------------------


def test_prefecture_creates_a_shared_post(client_for, prefecture_36, regles):
    argenton = Beneficiaire.objects.get(nom="Argenton-sur-Creuse")
    saint_gaultier = Beneficiaire.objects.get(nom="Saint-Gaultier")
    response = client_for(prefecture_36).post(
        reverse("postes:create"),
        {
            "beneficiaires": [argenton.pk, saint_gaultier.pk],
            "commune_codes": "",
            "intitule": "Chef de projet PVD Argenton – Saint-Gaultier",
            "employeur_siren": "200068872",
            "type_contrat": "contrat_projet",
            "etp": "1",
            "date_creation": "2021-05-01",
        },
    )
    poste = Poste.objects.get()
    assert response.status_code == 302
    assert poste.employeur_nom == "CC Éguzon - Argenton - Vallée de la Creuse"
    assert sorted(poste.communes.values_list("code", flat=True)) == ["36006", "36192"]
    assert poste.changements.get().nouvel_etat == Poste.Etat.A_CREER
    assert LogEntry.objects.get_for_object(poste).exists()


def test_prefecture_cannot_create_a_post_elsewhere_nor_with_a_foreign_siren(
    client_for, prefecture_36, ussel_la_courtine, le_blanc, regles
):
    client = client_for(prefecture_36)
    # The SIREN is Haute-Corrèze's EPCI: foreign to Le Blanc, and Ussel is outside the Indre.
    data = {
        "employeur_siren": "200066744",
        "type_contrat": "cdd",
        "etp": "1",
        "date_creation": "2021-05-01",
        "intitule": "Chef de projet",
    }
    for beneficiaire, error in (
        (ussel_la_courtine, "Sélectionnez un choix valide"),
        (le_blanc, "n'est ni celui d'une commune ni celui de l'EPCI"),
    ):
        response = client.post(
            reverse("postes:create"), {**data, "beneficiaires": [beneficiaire.pk]}
        )
        assert response.status_code == 200
        assert error in text(response)
    assert not Poste.objects.exists()


def test_recruitment_step_with_fiche_de_poste(client_for, prefecture_36, poste_le_blanc):
    client = client_for(prefecture_36)
    url = reverse("postes:etat", kwargs={"pk": poste_le_blanc.pk})
    response = client.post(url, {"nouvel_etat": "en_recrutement", "date": "2024-02-01"})
    assert "Indiquez la date de publication" in text(response)
    response = client.post(
        url,
        {
            "nouvel_etat": "en_recrutement",
            "date": "2024-02-01",
            "date_publication": "2024-02-01",
            "lien_offre": "javascript:alert(1)",
            "fiche_de_poste": SimpleUploadedFile("fiche.pdf", b"<script>", "application/pdf"),
        },
    )
    page = text(response)
    assert "n'est pas un PDF valide" in page
    poste_le_blanc.refresh_from_db()
    assert poste_le_blanc.etat == Poste.Etat.A_CREER
    response = client.post(
        url,
        {
            "nouvel_etat": "en_recrutement",
            "date": "2024-02-01",
            "date_publication": "2024-02-01",
            "lien_offre": "https://choisirleservicepublic.gouv.fr/offre/123",
            "commentaire": "Jury prévu en mars",
            "fiche_de_poste": SimpleUploadedFile("fiche.pdf", PDF, "application/pdf"),
        },
    )
    assert response.status_code == 302
    poste_le_blanc.refresh_from_db()
    assert poste_le_blanc.etat == Poste.Etat.EN_RECRUTEMENT
    assert poste_le_blanc.changements.first().by == prefecture_36
    download = client.get(reverse("postes:fiche", kwargs={"pk": poste_le_blanc.pk}))
    assert b"".join(download.streaming_content).startswith(b"%PDF")


# People --------------------------------------------------------------------------------------


def prise_de_poste(client, poste, **data):
    fields = {
        "prenom": "Léa",
        "nom": "Durand",
        "email": "lea.durand@example.fr",
        "telephone": "05 55 00 00 00",
        "date_debut": "2024-09-02",
        "date_fin_contrat": "2027-09-01",
        "inviter": "on",
    } | data
    return client.post(reverse("postes:occupation-create", kwargs={"pk": poste.pk}), fields)


def test_taking_the_post_opens_an_account_and_invites(
    client_for, prefecture_36, poste_le_blanc, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = prise_de_poste(client_for(prefecture_36), poste_le_blanc)
    assert response.status_code == 302
    occupation = Occupation.objects.get()
    poste_le_blanc.refresh_from_db()
    assert poste_le_blanc.etat == Poste.Etat.POURVU
    role = occupation.role
    assert role.kind == Role.Kind.CHEF_PROJET
    assert role.user.email == "lea.durand@example.fr"
    assert not role.user.has_usable_password()
    assert list(role.beneficiaires.all()) == list(poste_le_blanc.beneficiaires.all())
    [message] = mail.outbox
    assert message.to == ["lea.durand@example.fr"]
    assert "portail Petites villes de demain est l'outil commun" in message.body
    assert "Le Blanc" in message.body
    assert "/accounts/password/reset/key/" in message.body
    assert "réinitialis" not in message.body.lower()


def test_existing_account_with_another_role_is_refused(
    client_for, prefecture_36, poste_le_blanc, elu_ussel
):
    response = prise_de_poste(
        client_for(prefecture_36), poste_le_blanc, email="ELU-USSEL@test.pvd.fr"
    )
    assert "Un compte existe déjà avec cette adresse, avec le rôle « Élu »" in text(response)
    assert not Occupation.objects.exists()
    assert elu_ussel.roles.count() == 1


def test_existing_chef_de_projet_account_is_reused(
    client_for, prefecture_19, poste_ussel, cdp_ussel, django_capture_on_commit_callbacks
):
    poste = make_poste(Beneficiaire.objects.get(nom="Bort-les-Orgues – Neuvic"))
    with django_capture_on_commit_callbacks(execute=True):
        prise_de_poste(client_for(prefecture_19), poste, email=cdp_ussel.email)
    assert cdp_ussel.roles.count() == 2
    assert "Vous avez déjà un compte" in mail.outbox[0].body


def test_overlapping_occupation_and_end_before_start_are_refused(
    client_for, prefecture_19, poste_ussel
):
    client = client_for(prefecture_19)
    response = prise_de_poste(client, poste_ussel, date_debut="2024-01-01")
    assert "chevauchent l'occupation de Camille Martin (du 01/09/2021 sans date de départ)" in (
        text(response)
    )
    occupation = poste_ussel.occupations.get()
    response = client.post(
        reverse("postes:depart", kwargs={"pk": occupation.pk}),
        {"date_fin": "2021-08-01", "motif_fin": "Démission"},
    )
    assert "La date de départ précède la date de prise de poste" in text(response)
    response = prise_de_poste(
        client, poste_ussel, date_debut="2030-01-01", date_fin_contrat="2029-01-01", inviter=""
    )
    assert "La fin du contrat précède la date de prise de poste" in text(response)
    assert Occupation.objects.count() == 1
    assert not mail.outbox


def test_departure_makes_the_post_vacant_and_ends_the_role(
    client_for, prefecture_36, poste_le_blanc, django_capture_on_commit_callbacks
):
    client = client_for(prefecture_36)
    with django_capture_on_commit_callbacks(execute=True):
        prise_de_poste(client, poste_le_blanc, date_debut="2022-01-03")
    occupation = Occupation.objects.get()
    user = occupation.role.user
    today = timezone.localdate()
    # A departure announced for next month: the role stays until that day.
    depart = today + timedelta(days=30)
    response = client.post(
        reverse("postes:depart", kwargs={"pk": occupation.pk}),
        {"date_fin": depart.isoformat(), "motif_fin": "Mutation"},
    )
    assert response.status_code == 302
    poste_le_blanc.refresh_from_db()
    assert poste_le_blanc.etat == Poste.Etat.VACANT
    assert poste_le_blanc.vacant_depuis == depart + timedelta(days=1)
    assert poste_le_blanc.motif_vacance == "Mutation"
    assert user.roles.count() == 1
    assert end_due_roles(today) == 0
    assert end_due_roles(depart) == 1
    assert user.roles.count() == 0
    occupation.refresh_from_db()
    assert occupation.role is None
    page = text(client.get(reverse("postes:detail", kwargs={"pk": poste_le_blanc.pk})))
    assert "Léa Durand : du 03/01/2022 au" in page
    assert "Départ de Léa Durand : Mutation" in page
    assert ChangementEtat.objects.filter(poste=poste_le_blanc).count() == 2


def test_past_departure_ends_the_role_at_once(
    client_for, prefecture_36, poste_le_blanc, django_capture_on_commit_callbacks
):
    client = client_for(prefecture_36)
    with django_capture_on_commit_callbacks(execute=True):
        prise_de_poste(client, poste_le_blanc, date_debut="2022-01-03")
    occupation = Occupation.objects.get()
    client.post(
        reverse("postes:depart", kwargs={"pk": occupation.pk}),
        {"date_fin": "2024-03-15", "motif_fin": "Fin de contrat"},
    )
    assert not Role.objects.filter(user__email="lea.durand@example.fr").exists()


# Co-financing --------------------------------------------------------------------------------


def test_cofinancing_above_the_ceiling_is_refused_with_the_figures(
    client_for, prefecture_19, poste_ussel
):
    client = client_for(prefecture_19)
    url = reverse("postes:cofinancement-create", kwargs={"pk": poste_ussel.pk})
    response = client.post(
        url, cofinancement_data(2024, "60000", anct=(30000, 30000, 0), bdt=(16000, 16000, 0))
    )
    page = text(response)
    assert "Le total notifié pour 2024 (46 000 €) dépasse le plafond de 45 000 €" in page
    assert "75 % du coût chargé de 60 000 €" in page
    assert not CofinancementAnnee.objects.exists()
    response = client.post(
        url,
        cofinancement_data(2024, "60000", anct=(30000, 30000, 10000), bdt=(15000, 15000, 15000)),
    )
    assert response.status_code == 302
    annee = CofinancementAnnee.objects.get()
    assert annee.reference_dossier == "DS-12345678"
    assert annee.lignes.count() == 2
    page = text(client.get(reverse("postes:detail", kwargs={"pk": poste_ussel.pk})))
    assert "Plafond de l’année : 45 000 €" in page
    assert "20 000 €" in page  # remains to be paid by the ANCT


def test_cofinancing_for_a_year_before_the_post_and_paid_above_notified(
    client_for, prefecture_19, poste_ussel
):
    client = client_for(prefecture_19)
    url = reverse("postes:cofinancement-create", kwargs={"pk": poste_ussel.pk})
    page = text(client.post(url, cofinancement_data(2020, "60000", anct=(1, 1, 0))))
    assert "Le poste a été créé le 01/03/2021 : pas de cofinancement pour 2020" in page
    page = text(client.post(url, cofinancement_data(2024, "60000", anct=(100, 100, 200))))
    assert "Le montant versé dépasse le montant notifié" in page
    assert not CofinancementAnnee.objects.exists()


def test_a_rule_cannot_change_once_amounts_were_notified_under_it(
    client_for, national, poste_ussel
):
    annee = CofinancementAnnee.objects.create(poste=poste_ussel, annee=2024, cout_charge=60000)
    LigneCofinancement.objects.create(annee=annee, financeur="anct", montant_notifie=30000)
    regle = RegleCofinancement.objects.get(condition="sans_anah")
    url = reverse("postes:regle-update", kwargs={"pk": regle.pk})
    data = {
        "libelle": regle.libelle,
        "financeur": "",
        "condition": "sans_anah",
        "date_debut": "2023-01-01",
        "date_fin": "",
        "taux": "75",
        "plafond_annuel": "50000",
        "source": regle.source,
    }
    page = text(client_for(national).post(url, data))
    assert "Des montants ont été notifiés sous cette règle : plafond annuel (€)" in page
    regle.refresh_from_db()
    assert regle.plafond_annuel == 45000
    # Closing it is allowed: a new rule then takes over.
    data |= {"plafond_annuel": "45000", "date_fin": "2025-12-31"}
    assert client_for(national).post(url, data).status_code == 302
    regle.refresh_from_db()
    assert regle.date_fin == date(2025, 12, 31)


def test_prefecture_cannot_edit_the_rules(client_for, prefecture_19, regles):
    regle = RegleCofinancement.objects.first()
    client = client_for(prefecture_19)
    assert client.get(reverse("postes:regles")).status_code == 200
    assert client.get(reverse("postes:regle-update", kwargs={"pk": regle.pk})).status_code == 403


# Lists ---------------------------------------------------------------------------------------


def test_prefecture_list_shows_state_person_and_amounts(client_for, prefecture_19, poste_ussel):
    annee = CofinancementAnnee.objects.create(poste=poste_ussel, annee=2024, cout_charge=60000)
    LigneCofinancement.objects.create(
        annee=annee, financeur="anct", montant_notifie=30000, montant_verse=10000
    )
    response = client_for(prefecture_19).get(reverse("postes:list") + "?annee=2024")
    page = text(response)
    assert "Camille Martin" in page
    assert "31/12/2024" in page
    assert "30 000 €" in page and "10 000 €" in page
    [total] = response.context["totaux"]
    assert (total.region, total.financeur, total.notifie, total.reste) == (
        "Nouvelle-Aquitaine",
        "ANCT",
        30000,
        20000,
    )


def test_export_neutralises_formulas(client_for, national, poste_ussel):
    occupation = poste_ussel.occupations.get()
    occupation.prenom = '=HYPERLINK("http://x")'
    occupation.save()
    response = client_for(national).get(reverse("postes:list") + "?export=csv")
    content = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in content
    assert "Ussel – La Courtine" in content
    response = client_for(national).get(reverse("postes:list") + "?export=xlsx")
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")


def test_counts_of_vacant_posts_by_duration(
    client_for, national, ussel_la_courtine, le_blanc, regles
):
    today = timezone.localdate()
    make_poste(le_blanc, etat=Poste.Etat.VACANT, vacant_depuis=today - timedelta(days=200))
    make_poste(ussel_la_courtine, etat=Poste.Etat.VACANT, vacant_depuis=today - timedelta(days=10))
    response = client_for(national).get(reverse("postes:list"))
    compteurs = response.context["compteurs"]
    assert (compteurs.vacants, compteurs.vacants_plus_6_mois, compteurs.vacants_moins_3_mois) == (
        2,
        1,
        1,
    )


def test_national_list_keeps_its_query_count_at_two_sizes(
    client_for, national, territoires, regles
):
    from tests.conftest import count_queries

    client = client_for(national)
    beneficiaires = list(Beneficiaire.objects.all()[:8])

    def add_posts(few):
        for beneficiaire in few:
            poste = make_poste(beneficiaire, etat=Poste.Etat.POURVU)
            occupe(poste, date(2022, 1, 1))
            annee = CofinancementAnnee.objects.create(poste=poste, annee=2024, cout_charge=60000)
            for financeur in ("anct", "bdt"):
                LigneCofinancement.objects.create(
                    annee=annee, financeur=financeur, montant_notifie=10000
                )

    url = reverse("postes:list") + "?annee=2024"
    client.get(url)  # the reader's session and perimeter, read once
    add_posts(beneficiaires[:2])
    small_cold = count_queries(lambda: client.get(url))  # computes what the next ones read
    small = count_queries(lambda: client.get(url))
    add_posts(beneficiaires[2:])
    large_cold = count_queries(lambda: client.get(url))
    large = count_queries(lambda: client.get(url))
    assert (small_cold, small) == (large_cold, large)
    assert client.get(url).context["paginator"].count == 8


def test_beneficiary_page_and_plan_show_the_chef_de_projet(client_for, elu_ussel, poste_ussel):
    client = client_for(elu_ussel)
    beneficiaire = poste_ussel.beneficiaires.get()
    page = text(client.get(reverse("communes:beneficiaire-detail", kwargs={"pk": beneficiaire.pk})))
    assert "<strong>Camille Martin</strong> (camille.martin@example.fr)" in page
    assert "Nouveau poste" not in page
    page = text(client.get(reverse("actions:plan", kwargs={"pk": beneficiaire.pk})))
    assert "Chef de projet : Camille Martin" in page


def test_post_creation_date_cannot_move_after_its_people_or_funding(
    client_for, prefecture_19, poste_ussel
):
    CofinancementAnnee.objects.create(poste=poste_ussel, annee=2022, cout_charge=50000)
    data = {
        "beneficiaires": [b.pk for b in poste_ussel.beneficiaires.all()],
        "commune_codes": "19275",
        "intitule": "Chef de projet PVD",
        "employeur_siren": "200066744",
        "type_contrat": "cdd",
        "etp": "0.8",
        "date_creation": "2023-01-01",
    }
    url = reverse("postes:update", kwargs={"pk": poste_ussel.pk})
    client = client_for(prefecture_19)
    assert "Le poste a un cofinancement pour 2022" in text(client.post(url, data))
    data["date_creation"] = "2021-10-01"
    assert "Camille Martin a pris le poste le 01/09/2021" in text(client.post(url, data))
    data["date_creation"] = "2021-02-01"
    assert client.post(url, data).status_code == 302
    poste_ussel.refresh_from_db()
    assert list(poste_ussel.communes.values_list("code", flat=True)) == ["19275"]
    assert poste_ussel.type_contrat == "cdd"


def test_a_departure_recorded_after_notification_shows_the_overrun(
    client_for, prefecture_19, poste_ussel
):
    annee = CofinancementAnnee.objects.create(poste=poste_ussel, annee=2024, cout_charge=60000)
    LigneCofinancement.objects.create(annee=annee, financeur="anct", montant_notifie=45000)
    occupation = poste_ussel.occupations.get()
    occupation.date_fin = date(2024, 6, 30)
    occupation.save()
    page = text(
        client_for(prefecture_19).get(reverse("postes:detail", kwargs={"pk": poste_ussel.pk}))
    )
    assert "Le total notifié pour 2024 (45 000 €) dépasse le plafond de 22 500 €" in page


def test_post_and_co_financing_pages_have_their_history_in_words(
    client_for, prefecture_19, partenaire, poste_ussel
):
    from auditlog.context import set_actor

    with set_actor(prefecture_19):
        annee = CofinancementAnnee.objects.create(poste=poste_ussel, annee=2024, cout_charge=60000)
        ligne = LigneCofinancement.objects.create(
            annee=annee, financeur="anct", montant_notifie=22222
        )
        ligne.montant_notifie = 31313
        ligne.save()
    client = client_for(prefecture_19)
    page = text(client.get(reverse("postes:detail", kwargs={"pk": poste_ussel.pk})))
    assert "Historique" in page and "Camille Martin" in page
    url = reverse(
        "postes:cofinancement-update", kwargs={"pk": poste_ussel.pk, "annee_pk": annee.pk}
    )
    page = text(client.get(url))
    assert "Historique" in page and prefecture_19.get_full_name() in page
    assert "22 222 € → 31 313 €" in page
    # A funder reads the post's history, never the other funders' amounts.
    page = text(client_for(partenaire).get(reverse("postes:detail", kwargs={"pk": poste_ussel.pk})))
    assert "Historique" in page
    assert "22 222" not in page and "31 313" not in page


def test_a_recruitment_step_in_the_future_is_refused(client_for, prefecture_36, poste_le_blanc):
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    url = reverse("postes:etat", kwargs={"pk": poste_le_blanc.pk})
    response = client_for(prefecture_36).post(
        url, {"nouvel_etat": "en_recrutement", "date": tomorrow, "date_publication": tomorrow}
    )
    assert response.status_code == 200
    assert "Cette date est dans le futur" in text(response)
    poste_le_blanc.refresh_from_db()
    assert poste_le_blanc.etat == Poste.Etat.A_CREER
    assert not poste_le_blanc.changements.exists()


def test_arrival_and_departure_forms_propose_today_as_the_date(
    client_for, prefecture_19, prefecture_36, poste_ussel, poste_le_blanc
):
    today = f'value="{timezone.localdate():%Y-%m-%d}"'
    url = reverse("postes:occupation-create", kwargs={"pk": poste_le_blanc.pk})
    assert today in client_for(prefecture_36).get(url).content.decode()
    occupation = poste_ussel.occupations.get()
    url = reverse("postes:depart", kwargs={"pk": occupation.pk})
    assert today in client_for(prefecture_19).get(url).content.decode()


@pytest.mark.parametrize("peu_de_postes", [400, 0], ids=["correlated", "hashed"])
def test_list_counts_totals_and_rows_agree_with_each_posts_facts(
    client_for,
    national,
    le_blanc,
    ussel_la_courtine,
    regles,
    time_machine,
    monkeypatch,
    peu_de_postes,
):
    """The list's prepared queries (counts by state, totals by région, the page's rows) give
    what each post's own facts give (``with_facts``, which the exports read), whether the
    counts read a short list post by post or a long one set by set."""
    from postes import financement, tableaux

    monkeypatch.setattr(financement, "PEU_DE_POSTES", peu_de_postes)
    time_machine.move_to(datetime(2026, 11, 16, 10, 0, tzinfo=ZoneInfo("Europe/Paris")))
    today = timezone.localdate()
    pourvu = make_poste(le_blanc, etat=Poste.Etat.POURVU, employeur="A")
    occupation = occupe(pourvu, date(2022, 1, 1))
    occupation.date_fin_contrat = today + timedelta(days=30)
    occupation.save()
    vacant = make_poste(
        ussel_la_courtine, etat=Poste.Etat.VACANT, vacant_depuis=today - timedelta(days=100)
    )
    occupe(vacant, date(2022, 1, 1), today - timedelta(days=101))
    # Shared between the Indre (Centre-Val de Loire, 24) and the Corrèze (Nouvelle-Aquitaine).
    partage = make_poste(le_blanc, etat=Poste.Etat.EN_RECRUTEMENT, employeur="C")
    partage.beneficiaires.add(ussel_la_courtine)
    make_poste(ussel_la_courtine, etat=Poste.Etat.A_CREER, employeur="D")
    for poste, annee, montant in (
        (pourvu, 2026, 30000),
        (vacant, 2025, 20000),
        (partage, 2026, 1000),
    ):
        cofinancement = CofinancementAnnee.objects.create(
            poste=poste, annee=annee, cout_charge=60000
        )
        LigneCofinancement.objects.create(
            annee=cofinancement, financeur="anct", montant_notifie=montant, montant_verse=100
        )

    response = client_for(national).get(reverse("postes:list") + "?annee=2026")

    facts = list(tableaux.with_facts(Poste.objects.all(), today, 2026, None))
    assert response.context["compteurs"] == tableaux.Compteurs(
        total=4,
        pourvus=1,
        vacants=1,
        vacants_moins_3_mois=0,
        vacants_3_a_6_mois=1,
        vacants_plus_6_mois=0,
        en_recrutement=1,
        a_creer=1,
        fin_contrat_90j=sum(p.contrat_finissant for p in facts),
        fin_financement_90j=sum(p.derniere_annee_financee == 2026 for p in facts),
    )
    assert response.context["compteurs"].fin_contrat_90j == 1
    assert response.context["compteurs"].fin_financement_90j == 2
    totaux = [(t.region, t.notifie) for t in response.context["totaux"]]
    assert totaux == [("Centre-Val de Loire", 31000)]  # the shared post counted once
    assert {p.region_nom for p in facts if p.pk == partage.pk} == {"Centre-Val de Loire"}
    rows = response.context["rows"]
    by_pk = {p.pk: p for p in facts}
    assert [row["pk"] for row in rows] == [
        p.pk for p in sorted(facts, key=lambda p: (p.employeur_nom, p.pk))
    ]
    for row in rows:
        poste = by_pk[row["pk"]]
        assert (
            row["personne"],
            row["date_fin_contrat"],
            row["annee_financee"],
            row["notifie"],
            row["verse"],
        ) == (
            poste.personne,
            poste.fin_contrat,
            poste.derniere_annee_financee,
            poste.notifie,
            poste.verse,
        )
    assert rows[[r["pk"] for r in rows].index(partage.pk)]["noms_beneficiaires"] == [
        "Le Blanc",
        "Ussel – La Courtine",
    ]


@pytest.mark.parametrize(
    "tri", ["fin_contrat", "-fin_contrat", "fin_financement", "-vacant_depuis"]
)
def test_list_sorts_on_contract_and_funding_ends(
    client_for, national, le_blanc, ussel_la_courtine, regles, tri
):
    """The dates the list sorts on are computed only when asked: each order still holds
    (PostgreSQL puts empty dates last going up, first going down)."""
    from postes import tableaux

    today = timezone.localdate()
    for n, (fin, annee) in enumerate(((400, 2027), (30, 2025), (200, None))):
        poste = make_poste(
            le_blanc if n % 2 else ussel_la_courtine,
            etat=Poste.Etat.POURVU,
            employeur=f"Employeur {3 - n}",
        )
        occupation = occupe(poste, date(2022, 1, 1))
        occupation.date_fin_contrat = today + timedelta(days=fin)
        occupation.save()
        if annee:
            cofinancement = CofinancementAnnee.objects.create(
                poste=poste, annee=annee, cout_charge=60000
            )
            LigneCofinancement.objects.create(
                annee=cofinancement, financeur="anct", montant_notifie=1000
            )
    for jours in (9, 50):
        make_poste(le_blanc, etat=Poste.Etat.VACANT, vacant_depuis=today - timedelta(days=jours))
    response = client_for(national).get(reverse("postes:list") + f"?tri={tri}")
    facts = tableaux.with_facts(Poste.objects.all(), today, today.year, None)
    field = {"fin_contrat": "fin_contrat", "fin_financement": "derniere_annee_financee"}.get(
        tri.lstrip("-"), tri.lstrip("-")
    )
    value = {p.pk: getattr(p, field) for p in facts}
    shown = [value[row["pk"]] for row in response.context["rows"]]
    dates = sorted(v for v in value.values() if v is not None)
    empty = [None] * (len(value) - len(dates))
    assert shown == (empty + dates[::-1] if tri.startswith("-") else dates + empty)
    assert len(set(dates)) > 1
