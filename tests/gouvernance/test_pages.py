"""Governance pages: who reads, who writes (404 outside the territory, 403 read-only),
bad input refused in French with nothing changed, and a fixed number of queries."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from actions.models import LigneFinancement
from gouvernance.models import Decision, Instance, Membre, Presence, Reunion, Suite
from tests.actions.test_plan_readmodel import make_fiche
from tests.conftest import count_queries

from .conftest import TODAY, a_comite, a_reunion

pytestmark = pytest.mark.django_db


def test_members_and_the_beneficiarys_readers_read_its_comite(
    client_for, comite, cdp_ussel, elu_ussel, prefecture_19, prefecture_36, partenaire
):
    url = reverse("gouvernance:instance", args=[comite.pk])
    for user in (cdp_ussel, elu_ussel, prefecture_19, partenaire):
        assert client_for(user).get(url).status_code == 200
    # Another territory: 404, and the list does not show it.
    assert client_for(prefecture_36).get(url).status_code == 404
    listing = client_for(prefecture_36).get(reverse("gouvernance:list")).content.decode()
    assert comite.nom not in listing


def test_a_member_outside_the_territory_reads_the_instance_they_sit_in(
    client_for, clct_36, cdp_ussel
):
    url = reverse("gouvernance:instance", args=[clct_36.pk])
    assert client_for(cdp_ussel).get(url).status_code == 404
    Membre.objects.create(instance=clct_36, organisation="Invitée", user=cdp_ussel)
    assert client_for(cdp_ussel).get(url).status_code == 200
    # Reading is not writing.
    create = reverse("gouvernance:reunion-create", args=[clct_36.pk])
    assert client_for(cdp_ussel).get(create).status_code == 403


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("cdp_ussel", 200),
        ("prefecture_19", 200),
        ("national", 200),
        ("elu_ussel", 403),
        ("partenaire", 403),
        ("prefecture_36", 404),
        ("sans_role", 404),
    ],
)
def test_who_schedules_a_comite_de_projet_meeting(request, client_for, comite, who, status):
    client = client_for(request.getfixturevalue(who))
    url = reverse("gouvernance:reunion-create", args=[comite.pk])
    assert client.get(url).status_code == status
    response = client.post(
        url, {"date": "2026-04-02", "heure_debut": "14:00", "heure_fin": "16:00", "lieu": "Ussel"}
    )
    assert response.status_code == (302 if status == 200 else status)
    assert comite.reunions.exists() == (status == 200)


@pytest.mark.parametrize(
    ("who", "status"),
    [("prefecture_36", 302), ("national", 302), ("cdp_ussel", 404), ("prefecture_19", 404)],
)
def test_the_clct_is_written_by_its_prefecture(request, client_for, clct_36, who, status):
    client = client_for(request.getfixturevalue(who))
    url = reverse("gouvernance:reunion-create", args=[clct_36.pk])
    data = {
        "date": "2026-06-02",
        "heure_debut": "09:30",
        "heure_fin": "12:00",
        "lieu": "Préfecture",
    }
    assert client.post(url, data).status_code == status


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"date": "2026-04-02", "heure_debut": "14:00", "heure_fin": "16:00"}, "lieu ou un lien"),
        (
            {"date": "2026-04-02", "heure_debut": "16:00", "heure_fin": "14:00", "lieu": "U"},
            "finir après son début",
        ),
        ({"date": "9999-12-31", "heure_debut": "14:00", "heure_fin": "16:00", "lieu": "U"}, ""),
        (
            {"date": "2026-04-02", "heure_debut": "14:00", "heure_fin": "16:00", "lieu": "a\nb"},
            "",
        ),
    ],
)
def test_a_bad_meeting_is_refused_in_french(client_for, comite, cdp_ussel, data, message):
    response = client_for(cdp_ussel).post(
        reverse("gouvernance:reunion-create", args=[comite.pk]), data
    )
    assert response.status_code == 200
    assert "Erreur" in response.content.decode()
    assert message in response.content.decode()
    assert not comite.reunions.exists()


def test_a_double_click_creates_one_meeting(client_for, comite, cdp_ussel):
    client = client_for(cdp_ussel)
    url = reverse("gouvernance:reunion-create", args=[comite.pk])
    jeton = client.get(url).context["form"].initial["jeton_envoi"]
    data = {"date": "2026-04-02", "heure_debut": "14:00", "heure_fin": "16:00", "lieu": "Ussel"}
    data["jeton_envoi"] = jeton
    client.post(url, data)
    client.post(url, data)
    assert comite.reunions.count() == 1


def test_attendance_and_a_decision_raising_a_notified_amount_show_on_the_fiche(
    client_for, comite, cdp_ussel, ligne, today
):
    reunion = a_reunion(comite, TODAY - timedelta(days=3))
    client = client_for(cdp_ussel)
    president, sous_prefet, invite = comite.membres.order_by("pk")
    response = client.post(
        reverse("gouvernance:presences", args=[reunion.pk]),
        {
            f"statut_{president.pk}": "present",
            f"statut_{sous_prefet.pk}": "represente",
            f"represente_{sous_prefet.pk}": "La secrétaire générale",
            f"statut_{invite.pk}": "excuse",
        },
    )
    assert response.status_code == 302
    assert Presence.objects.get(membre=sous_prefet).represente_par == "La secrétaire générale"

    response = client.post(
        reverse("gouvernance:decision-create", args=[reunion.pk]),
        {
            "type": "financement",
            "texte": "Le comité porte la DETR à 35 000 €.",
            "ligne": ligne.pk,
            "montant": "35000",
            "suite": "Notifier la commune",
            "responsable": cdp_ussel.pk,
            "echeance": "2026-04-30",
        },
    )
    assert response.status_code == 302
    ligne.refresh_from_db()
    assert ligne.montant == Decimal("35000")
    assert ligne.statut == LigneFinancement.Statut.NOTIFIE
    assert ligne.date_decision == reunion.date
    decision = Decision.objects.get()
    assert list(decision.lignes.all()) == [ligne]
    assert decision.suites.get().responsable == cdp_ussel

    fiche = client.get(reverse("actions:fiche", args=[ligne.fiche_id])).content.decode()
    assert "Décidé en comité de projet du 13/03/2026" in fiche
    # The meeting's « Historique »: who recorded the attendance and the decision.
    historique = client.get(reverse("gouvernance:reunion", args=[reunion.pk])).content.decode()
    historique = historique.split('id="historique-titre"')[1]
    assert "La secrétaire générale" in historique and cdp_ussel.get_full_name() in historique


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"montant": "35000"}, "ligne"),  # an amount without its line
        ({"montant": "-1", "ligne": "LIGNE"}, "montant"),
        ({"montant": "9999999999999", "ligne": "LIGNE"}, "montant"),
        ({"suite": "Notifier"}, "suite"),  # no person responsible, no due date
        ({"texte": ""}, "texte"),
    ],
)
def test_a_bad_decision_changes_nothing(client_for, comite, cdp_ussel, ligne, data, field):
    reunion = a_reunion(comite)
    base = {"type": "financement", "texte": "Décision"}
    base.update({k: (ligne.pk if v == "LIGNE" else v) for k, v in data.items()})
    response = client_for(cdp_ussel).post(
        reverse("gouvernance:decision-create", args=[reunion.pk]), base
    )
    assert response.status_code == 200
    assert response.context["form"].errors[field]
    ligne.refresh_from_db()
    assert ligne.montant == Decimal("20000") and not Decision.objects.exists()


def test_another_territorys_line_cannot_be_decided(client_for, comite, cdp_ussel, le_blanc):
    fiche = make_fiche(le_blanc, "9.9", lignes=[("DETR", Decimal("5"))])
    reunion = a_reunion(comite)
    response = client_for(cdp_ussel).post(
        reverse("gouvernance:decision-create", args=[reunion.pk]),
        {
            "type": "financement",
            "texte": "x",
            "ligne": fiche.financements.get().pk,
            "montant": "7",
        },
    )
    assert response.status_code == 200 and response.context["form"].errors["ligne"]
    assert fiche.financements.get().montant == Decimal("5")


def test_a_meeting_to_come_cannot_be_declared_held(client_for, comite, cdp_ussel, today):
    reunion = a_reunion(comite, TODAY + timedelta(days=5))
    client = client_for(cdp_ussel)
    response = client.post(
        reverse("gouvernance:statut", args=[reunion.pk]), {"statut": "tenue"}, follow=True
    )
    assert "ne peut pas être déclarée tenue" in response.content.decode()
    reunion.refresh_from_db()
    assert reunion.statut == Reunion.Statut.PREVUE


def test_the_follow_up_is_marked_done_by_its_person_not_by_a_reader(
    client_for, comite, cdp_ussel, elu_ussel, partenaire
):
    reunion = a_reunion(comite)
    decision = Decision.objects.create(reunion=reunion, type="autre", texte="x")
    suite = Suite.objects.create(
        decision=decision, intitule="Relancer", responsable=elu_ussel, echeance=TODAY
    )
    url = reverse("gouvernance:suite-faite", args=[suite.pk])
    assert client_for(partenaire).post(url).status_code == 403
    suite.refresh_from_db()
    assert suite.faite_le is None
    assert client_for(elu_ussel).post(url).status_code == 302
    suite.refresh_from_db()
    assert suite.faite_le is not None


def test_the_relevé_is_published_once_held_and_downloads(
    client_for, comite, cdp_ussel, partenaire, django_capture_on_commit_callbacks
):
    reunion = a_reunion(comite)
    Decision.objects.create(reunion=reunion, type="autre", texte="Le comité valide le plan.")
    client = client_for(cdp_ussel)
    url = reverse("gouvernance:releve-publier", args=[reunion.pk])
    response = client.post(url, follow=True)
    assert "une fois tenue" in response.content.decode()
    assert not reunion.releves.exists()
    assert client_for(partenaire).post(url).status_code == 403

    reunion.change_statut(Reunion.Statut.TENUE)
    client = client_for(cdp_ussel)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url)
    releve = reunion.releves.get()
    assert releve.statut == "pret", releve.erreur
    response = client.get(reverse("gouvernance:releve", args=[releve.pk]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"%PDF")


def test_the_relevé_of_another_territory_is_404(
    client_for, comite, cdp_ussel, prefecture_36, django_capture_on_commit_callbacks
):
    reunion = a_reunion(comite, statut=Reunion.Statut.TENUE)
    with django_capture_on_commit_callbacks(execute=True):
        client_for(cdp_ussel).post(reverse("gouvernance:releve-publier", args=[reunion.pk]))
    releve = reunion.releves.get()
    assert (
        client_for(cdp_ussel).get(reverse("gouvernance:releve", args=[releve.pk])).status_code
        == 200
    )
    url = reverse("gouvernance:releve", args=[releve.pk])
    assert client_for(prefecture_36).get(url).status_code == 404


def test_the_pages_cost_a_fixed_number_of_queries(client_for, comite, cdp_ussel, ligne):
    def add(n: int, start: int) -> Reunion:
        for i in range(n):
            reunion = a_reunion(comite, date(2025, 1, 1) + timedelta(days=start + i))
            decision = Decision.objects.create(reunion=reunion, type="financement", texte="d")
            decision.lignes.add(ligne)
            decision.fiches.add(ligne.fiche)
            Suite.objects.create(
                decision=decision, intitule="s", responsable=cdp_ussel, echeance=TODAY
            )
            for membre in comite.membres.all():
                Presence.objects.create(reunion=reunion, membre=membre, statut="present")
        a_comite_elsewhere = Instance.objects.count()
        return reunion if a_comite_elsewhere else None

    client = client_for(cdp_ussel)
    reunion = add(1, 0)
    pages = [
        reverse("gouvernance:list"),
        reverse("gouvernance:instance", args=[comite.pk]),
        reverse("gouvernance:reunion", args=[reunion.pk]),
        reverse("actions:fiche", args=[ligne.fiche_id]),
    ]
    for url in pages:
        client.get(url)
    small = [count_queries(lambda url=url: client.get(url)) for url in pages]
    add(8, 100)
    d = Decision.objects.create(reunion=reunion, type="autre", texte="autre")
    Suite.objects.create(decision=d, intitule="s2", responsable=cdp_ussel, echeance=TODAY)
    large = [count_queries(lambda url=url: client.get(url)) for url in pages]
    assert small == large, dict(zip(pages, zip(small, large, strict=True), strict=True))
    print("queries (small = large):", dict(zip(pages, small, strict=True)))


def test_other_beneficiaries_comite_is_not_listed_for_ussel(client_for, cdp_ussel, le_blanc):
    autre = a_comite(le_blanc)
    listing = client_for(cdp_ussel).get(reverse("gouvernance:list")).content.decode()
    assert autre.nom not in listing


def test_the_frequency_is_set_per_instance_by_those_who_keep_it(
    client_for, comite, clct_36, cdp_ussel, elu_ussel, prefecture_36
):
    url = reverse("gouvernance:instance-update", args=[comite.pk])
    data = {"nom": comite.nom, "reunions_par_an": "3", "secretariat": "Mairie d'Ussel"}
    assert client_for(elu_ussel).post(url, data).status_code == 403
    assert client_for(cdp_ussel).post(url, data).status_code == 302
    comite.refresh_from_db()
    assert comite.reunions_par_an == 3
    # The CLCT meets twice a year at least, by law; 13 a year is not a frequency.
    url = reverse("gouvernance:instance-update", args=[clct_36.pk])
    client = client_for(prefecture_36)
    for value, message in (("1", "au moins deux fois par an"), ("13", "inférieure ou égale à 12")):
        response = client.post(url, {"nom": clct_36.nom, "reunions_par_an": value})
        assert response.status_code == 200 and message in response.content.decode()
    clct_36.refresh_from_db()
    assert clct_36.reunions_par_an == 2
