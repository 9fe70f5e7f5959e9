"""Issue 23, the rest: instances set up on the portal, and everything recorded changed or
removed after the fact, by those who keep the instance (another territory: 404, a reader:
403), bad input refused in French with nothing changed, decisions frozen once the relevé is
published, every change in the journal."""

from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from gouvernance.models import (
    Decision,
    Instance,
    Membre,
    PointOrdreDuJour,
    Releve,
    Reunion,
    Suite,
)
from tests.conftest import count_queries

from .conftest import TODAY, a_comite, a_reunion

pytestmark = pytest.mark.django_db

# Who tries, and what they get, on Ussel's comité de projet.
USSEL = [
    ("cdp_ussel", "ok"),
    ("prefecture_19", "ok"),
    ("national", "ok"),
    ("elu_ussel", 403),
    ("partenaire", 403),
    ("prefecture_36", 404),
    ("sans_role", 404),
]


def status_of(expected, response, ok=302) -> bool:
    return response.status_code == (ok if expected == "ok" else expected)


# Creating an instance --------------------------------------------------------------------------


def create(client, **data):
    return client.post(reverse("gouvernance:instance-create"), {"reunions_par_an": "1", **data})


def test_a_chef_de_projet_sets_up_the_comite_de_projet_of_their_town(
    client_for, cdp_ussel, ussel_la_courtine
):
    client = client_for(cdp_ussel)
    assert client.get(reverse("gouvernance:instance-create")).status_code == 200
    response = create(
        client,
        type="comite_projet",
        beneficiaire=ussel_la_courtine.pk,
        secretariat="Mairie d'Ussel",
    )
    instance = Instance.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("gouvernance:instance", args=[instance.pk])
    assert instance.nom.startswith("Comité de projet") and "Ussel" in instance.nom
    assert instance.beneficiaire == ussel_la_courtine and instance.secretariat == "Mairie d'Ussel"
    assert LogEntry.objects.get_for_object(instance).filter(action=LogEntry.Action.CREATE).exists()
    # The same town's second comité de projet: refused.
    response = create(client, type="comite_projet", beneficiaire=ussel_la_courtine.pk)
    assert response.status_code == 200 and "déjà son comité de projet" in response.content.decode()
    assert Instance.objects.count() == 1


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("prefecture_36", 302),
        ("national", 302),
        ("prefecture_19", 200),  # the Indre is not among its choices: a form error
        ("cdp_ussel", 200),
        ("elu_ussel", 403),
        ("partenaire", 403),
        ("sans_role", 403),
    ],
)
def test_the_clct_is_set_up_by_its_prefecture(request, client_for, territoires, who, status):
    client = client_for(request.getfixturevalue(who))
    response = create(client, type="clct", departement="36", reunions_par_an="2")
    assert response.status_code == status
    assert Instance.objects.filter(type="clct", departement_id="36").exists() == (status == 302)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "clct", "departement": "36", "reunions_par_an": "1"}, "deux fois par an"),
        ({"type": "clct", "beneficiaire": "LE_BLANC"}, "couvre un département"),
        ({"type": "comite_projet", "departement": "36"}, "couvre un bénéficiaire"),
        ({"type": "financeurs", "departement": "36"}, "couvre une région"),
        ({"type": "autre", "departement": "36", "region": "24"}, "un seul périmètre"),
        ({"type": "autre"}, "un seul périmètre"),
        ({"type": "autre", "region": "24", "nom": "Comité\nrégional"}, ""),
        ({"type": "autre", "region": "24", "reunions_par_an": "13"}, "12"),
        ({"type": "autre", "region": "75"}, "Sélectionnez un choix valide"),
        ({"type": "inconnu", "region": "24"}, "Sélectionnez un choix valide"),
    ],
)
def test_a_bad_instance_is_refused_in_french(client_for, prefecture_36, le_blanc, data, message):
    data = {k: (le_blanc.pk if v == "LE_BLANC" else v) for k, v in data.items()}
    response = create(client_for(prefecture_36), **data)
    assert response.status_code == 200
    content = response.content.decode()
    assert "Erreur" in content and message in content
    assert not Instance.objects.exists()


def test_a_regional_committee_is_set_up_by_a_prefecture_of_the_region(client_for, prefecture_36):
    response = create(client_for(prefecture_36), type="financeurs", region="24")
    assert response.status_code == 302
    instance = Instance.objects.get()
    assert instance.region_id == "24" and instance.nom.startswith("Comité régional des financeurs")


def test_an_instance_that_never_met_can_be_deleted_not_one_that_met(
    client_for, comite, cdp_ussel, elu_ussel
):
    url = reverse("gouvernance:instance-delete", args=[comite.pk])
    assert client_for(elu_ussel).post(url).status_code == 403
    reunion = a_reunion(comite, statut=Reunion.Statut.TENUE)
    response = client_for(cdp_ussel).post(url, follow=True)
    assert "déjà réunie" in response.content.decode()
    assert Instance.objects.filter(pk=comite.pk).exists()
    reunion.delete()
    a_reunion(comite, TODAY + timedelta(days=10))  # planned only: it goes with the instance
    assert client_for(cdp_ussel).post(url).status_code == 302
    assert not Instance.objects.filter(pk=comite.pk).exists()
    assert LogEntry.objects.filter(
        content_type__model="instance", object_pk=str(comite.pk), action=LogEntry.Action.DELETE
    ).exists()


def test_an_instance_of_another_territory_cannot_be_deleted(client_for, comite, prefecture_36):
    url = reverse("gouvernance:instance-delete", args=[comite.pk])
    assert client_for(prefecture_36).post(url).status_code == 404
    assert Instance.objects.filter(pk=comite.pk).exists()


# Meetings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "expected"), USSEL)
def test_who_reschedules_a_meeting(request, client_for, comite, who, expected):
    reunion = a_reunion(comite, TODAY + timedelta(days=5))
    response = client_for(request.getfixturevalue(who)).post(
        reverse("gouvernance:reunion-update", args=[reunion.pk]),
        {
            "date": "2026-04-09",
            "heure_debut": "10:00",
            "heure_fin": "12:00",
            "lien_visio": "https://visio.example.fr/comite",
        },
    )
    assert status_of(expected, response)
    reunion.refresh_from_db()
    moved = (str(reunion.date), reunion.lien_visio) == (
        "2026-04-09",
        "https://visio.example.fr/comite",
    )
    assert moved == (expected == "ok")


def test_a_held_meeting_cannot_move_into_the_future(client_for, comite, cdp_ussel, today):
    reunion = a_reunion(comite, TODAY - timedelta(days=3), statut=Reunion.Statut.TENUE)
    url = reverse("gouvernance:reunion-update", args=[reunion.pk])
    data = {"date": "2026-05-01", "heure_debut": "14:00", "heure_fin": "16:00", "lieu": "Ussel"}
    response = client_for(cdp_ussel).post(url, data)
    assert response.status_code == 200
    assert "ne peut pas être dans le futur" in response.content.decode()
    reunion.refresh_from_db()
    assert reunion.date == TODAY - timedelta(days=3)
    # Into the past it may move (a wrong date corrected); cancelling is a status.
    data["date"] = "2026-03-10"
    assert client_for(cdp_ussel).post(url, data).status_code == 302
    reunion.refresh_from_db()
    assert str(reunion.date) == "2026-03-10"
    assert LogEntry.objects.get_for_object(reunion).filter(action=LogEntry.Action.UPDATE).exists()


def test_a_bad_reschedule_changes_nothing(client_for, comite, cdp_ussel):
    reunion = a_reunion(comite, TODAY + timedelta(days=5))
    url = reverse("gouvernance:reunion-update", args=[reunion.pk])
    for data in (
        {"date": "2026-04-09", "heure_debut": "16:00", "heure_fin": "14:00", "lieu": "U"},
        {"date": "2026-04-09", "heure_debut": "14:00", "heure_fin": "16:00"},
        {"date": "9999-12-31", "heure_debut": "14:00", "heure_fin": "16:00", "lieu": "U"},
        {"date": "2026-04-09", "heure_debut": "14:00", "heure_fin": "16:00", "lien_visio": "x"},
    ):
        response = client_for(cdp_ussel).post(url, data)
        assert response.status_code == 200 and "Erreur" in response.content.decode()
    reunion.refresh_from_db()
    assert reunion.date == TODAY + timedelta(days=5) and reunion.lieu == "Mairie d'Ussel"


# Members ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "expected"), USSEL)
def test_who_changes_a_members_role_and_removes_them(request, client_for, comite, who, expected):
    membre = comite.membres.get(role=Membre.Role.INVITE)
    client = client_for(request.getfixturevalue(who))
    response = client.post(
        reverse("gouvernance:membre-update", args=[membre.pk]),
        {"organisation": "Banque des Territoires", "role": "membre"},
    )
    assert status_of(expected, response)
    membre.refresh_from_db()
    assert (membre.role == "membre") == (expected == "ok")
    response = client.post(reverse("gouvernance:membre-delete", args=[membre.pk]))
    assert status_of(expected, response)
    assert Membre.objects.filter(pk=membre.pk).exists() == (expected != "ok")


def test_a_bad_member_change_is_refused(client_for, comite, cdp_ussel):
    membre = comite.membres.get(role=Membre.Role.INVITE)
    url = reverse("gouvernance:membre-update", args=[membre.pk])
    for data in (
        {"organisation": "", "role": "membre"},
        {"organisation": "A\nB", "role": "membre"},
        {"organisation": "BdT", "role": "roi"},
        {"organisation": "BdT", "role": "membre", "email": "pas une adresse"},
    ):
        response = client_for(cdp_ussel).post(url, data)
        assert response.status_code == 200 and "Erreur" in response.content.decode()
    membre.refresh_from_db()
    assert (membre.organisation, membre.role) == ("Banque des Territoires", "invite")
    assert client_for(cdp_ussel).get(url).status_code == 200
    assert (
        client_for(cdp_ussel).get(reverse("gouvernance:membre-delete", args=[1])).status_code == 405
    )


# The agenda ------------------------------------------------------------------------------------


def agenda(reunion) -> list[str]:
    return list(reunion.points.order_by("ordre").values_list("intitule", flat=True))


def test_the_agenda_is_edited_reordered_and_trimmed(client_for, comite, cdp_ussel, elu_ussel):
    reunion = a_reunion(comite)
    a, b, c = (
        PointOrdreDuJour.objects.create(reunion=reunion, ordre=i, intitule=t)
        for i, t in ((1, "Plan"), (2, "Budget"), (3, "Divers"))
    )
    client = client_for(cdp_ussel)
    assert client.post(reverse("gouvernance:point-down", args=[a.pk])).status_code == 302
    assert agenda(reunion) == ["Budget", "Plan", "Divers"]
    client.post(reverse("gouvernance:point-up", args=[c.pk]))
    assert agenda(reunion) == ["Budget", "Divers", "Plan"]
    client.post(reverse("gouvernance:point-up", args=[b.pk]))  # already first: nothing moves
    assert agenda(reunion) == ["Budget", "Divers", "Plan"]
    assert list(reunion.points.order_by("ordre").values_list("ordre", flat=True)) == [1, 2, 3]

    url = reverse("gouvernance:point-update", args=[c.pk])
    response = client.post(url, {"ordre": "2", "intitule": "Questions diverses"})
    assert response.status_code == 302
    assert "Questions diverses" in agenda(reunion)
    for data in ({"ordre": "2", "intitule": ""}, {"ordre": "100", "intitule": "x"}):
        assert client.post(url, data).status_code == 200
    c.refresh_from_db()
    assert c.intitule == "Questions diverses"

    # A reader reorders nothing, removes nothing.
    assert (
        client_for(elu_ussel).post(reverse("gouvernance:point-up", args=[a.pk])).status_code == 403
    )
    assert (
        client_for(elu_ussel).post(reverse("gouvernance:point-delete", args=[a.pk])).status_code
        == 403
    )
    client = client_for(cdp_ussel)
    assert client.post(reverse("gouvernance:point-delete", args=[a.pk])).status_code == 302
    assert agenda(reunion) == ["Budget", "Questions diverses"]
    assert LogEntry.objects.filter(
        content_type__model="pointordredujour", object_pk=str(a.pk), action=LogEntry.Action.DELETE
    ).exists()


def test_another_territorys_agenda_point_is_404(client_for, comite, prefecture_36):
    point = PointOrdreDuJour.objects.create(reunion=a_reunion(comite), intitule="Plan")
    client = client_for(prefecture_36)
    for name in ("point-update", "point-up", "point-down", "point-delete"):
        url = reverse(f"gouvernance:{name}", args=[point.pk])
        assert (client.get(url) if name == "point-update" else client.post(url)).status_code == 404
    assert agenda(point.reunion) == ["Plan"]


# Decisions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "expected"), USSEL)
def test_who_edits_and_deletes_a_decision(request, client_for, comite, who, expected):
    decision = Decision.objects.create(reunion=a_reunion(comite), type="autre", texte="Texte")
    client = client_for(request.getfixturevalue(who))
    url = reverse("gouvernance:decision-update", args=[decision.pk])
    response = client.post(url, {"type": "priorisation", "texte": "Le comité priorise."})
    assert status_of(expected, response)
    decision.refresh_from_db()
    assert (decision.texte == "Le comité priorise.") == (expected == "ok")
    response = client.post(reverse("gouvernance:decision-delete", args=[decision.pk]))
    assert status_of(expected, response)
    assert Decision.objects.filter(pk=decision.pk).exists() == (expected != "ok")


def test_a_bad_decision_edit_changes_nothing(client_for, comite, cdp_ussel, le_blanc):
    from decimal import Decimal

    from tests.actions.test_plan_readmodel import make_fiche

    fiche = make_fiche(le_blanc, "9.9", lignes=[("DETR", Decimal("5"))])
    decision = Decision.objects.create(reunion=a_reunion(comite), type="autre", texte="Texte")
    url = reverse("gouvernance:decision-update", args=[decision.pk])
    for data in (
        {"type": "autre", "texte": ""},
        {"type": "autre", "texte": "x" * 2**20},
        {"type": "roi", "texte": "x"},
        {"type": "autre", "texte": "x", "fiches": [fiche.pk]},  # another town's fiche
    ):
        response = client_for(cdp_ussel).post(url, data)
        assert response.status_code == 200 and "Erreur" in response.content.decode()
    decision.refresh_from_db()
    assert (decision.type, decision.texte, decision.fiches.count()) == ("autre", "Texte", 0)


def test_decisions_are_frozen_once_the_releve_is_published(
    client_for, comite, cdp_ussel, django_capture_on_commit_callbacks
):
    reunion = a_reunion(comite, statut=Reunion.Statut.TENUE)
    decision = Decision.objects.create(reunion=reunion, type="autre", texte="Texte")
    client = client_for(cdp_ussel)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("gouvernance:releve-publier", args=[reunion.pk]))
    assert reunion.releves.get().statut == Releve.Statut.PRET
    page = client.get(reverse("gouvernance:reunion", args=[reunion.pk])).content.decode()
    assert "les décisions ne changent plus" in page
    assert reverse("gouvernance:decision-update", args=[decision.pk]) not in page

    url = reverse("gouvernance:decision-update", args=[decision.pk])
    response = client.post(url, {"type": "autre", "texte": "Réécrite"})
    assert response.status_code == 200 and "ne changent plus" in response.content.decode()
    response = client.post(reverse("gouvernance:decision-delete", args=[decision.pk]), follow=True)
    assert "ne changent plus" in response.content.decode()
    decision.refresh_from_db()
    assert decision.texte == "Texte"


def test_the_freeze_reads_what_is_stored_not_what_the_page_saw(comite):
    """A relevé being published (its row « en cours ») freezes as well: the check runs in
    the transaction, on the stored rows, after the page was shown."""
    from django.core.exceptions import ValidationError
    from django.db import transaction

    reunion = a_reunion(comite, statut=Reunion.Statut.TENUE)
    Decision.objects.create(reunion=reunion, type="autre", texte="Texte")
    Releve.objects.create(reunion=reunion, statut=Releve.Statut.EN_COURS)
    with pytest.raises(ValidationError), transaction.atomic():
        reunion.lock_decisions()
    Releve.objects.update(statut=Releve.Statut.ECHEC)  # a failed publication freezes nothing
    with transaction.atomic():
        reunion.lock_decisions()


# Follow-ups ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "expected"), USSEL)
def test_who_moves_a_follow_ups_person_and_date(
    request, client_for, comite, who, expected, elu_ussel, cdp_ussel
):
    decision = Decision.objects.create(reunion=a_reunion(comite), type="autre", texte="x")
    suite = Suite.objects.create(
        decision=decision, intitule="Relancer", responsable=cdp_ussel, echeance=TODAY
    )
    response = client_for(request.getfixturevalue(who)).post(
        reverse("gouvernance:suite-update", args=[suite.pk]),
        {"intitule": "Relancer la Région", "responsable": elu_ussel.pk, "echeance": "2026-05-15"},
    )
    assert status_of(expected, response)
    suite.refresh_from_db()
    assert (suite.responsable == elu_ussel and str(suite.echeance) == "2026-05-15") == (
        expected == "ok"
    )


def test_a_bad_follow_up_change_is_refused(client_for, comite, cdp_ussel, prefecture_36):
    decision = Decision.objects.create(reunion=a_reunion(comite), type="autre", texte="x")
    suite = Suite.objects.create(
        decision=decision, intitule="Relancer", responsable=cdp_ussel, echeance=TODAY
    )
    url = reverse("gouvernance:suite-update", args=[suite.pk])
    for data in (
        {"intitule": "x", "responsable": prefecture_36.pk, "echeance": "2026-05-15"},  # no member
        {"intitule": "x", "responsable": cdp_ussel.pk, "echeance": "9999-12-31"},
        {"intitule": "", "responsable": cdp_ussel.pk, "echeance": "2026-05-15"},
    ):
        response = client_for(cdp_ussel).post(url, data)
        assert response.status_code == 200 and "Erreur" in response.content.decode()
    suite.refresh_from_db()
    assert (suite.intitule, suite.echeance) == ("Relancer", TODAY)


def test_another_territorys_member_decision_and_follow_up_are_404(client_for, le_blanc, cdp_ussel):
    instance = a_comite(le_blanc)
    membre = Membre.objects.create(instance=instance, organisation="Mairie du Blanc")
    decision = Decision.objects.create(reunion=a_reunion(instance), type="autre", texte="x")
    suite = Suite.objects.create(
        decision=decision, intitule="Relancer", responsable=cdp_ussel, echeance=TODAY
    )
    client = client_for(cdp_ussel)
    for name, pk in (
        ("membre-update", membre.pk),
        ("decision-update", decision.pk),
        ("reunion-update", decision.reunion_id),
    ):
        assert client.get(reverse(f"gouvernance:{name}", args=[pk])).status_code == 404
    for name, pk in (("membre-delete", membre.pk), ("decision-delete", decision.pk)):
        assert client.post(reverse(f"gouvernance:{name}", args=[pk])).status_code == 404
    # Its person responsible reads the follow-up through its instance? No: another town's.
    assert client.get(reverse("gouvernance:suite-update", args=[suite.pk])).status_code == 404


# Query counts ----------------------------------------------------------------------------------


def test_the_pages_cost_the_same_queries_at_1_and_10_meetings_and_members(
    client_for, comite, cdp_ussel, ligne, le_blanc
):
    """Every governance page, the new ones included, at two data sizes: 1 meeting, its
    point, decision and follow-up, the 3 members; then 10 of each (and 12 members)."""

    def grow(n: int, start: int) -> Reunion:
        for i in range(n):
            reunion = a_reunion(comite, TODAY - timedelta(days=start + i), statut="tenue")
            PointOrdreDuJour.objects.create(reunion=reunion, ordre=1, intitule=f"Point {i}")
            decision = Decision.objects.create(reunion=reunion, type="financement", texte="d")
            decision.lignes.add(ligne)
            decision.fiches.add(ligne.fiche)
            Suite.objects.create(
                decision=decision, intitule="s", responsable=cdp_ussel, echeance=TODAY
            )
        return reunion

    reunion = grow(1, 1)
    first = reunion.points.get(), reunion.decisions.get(), Suite.objects.get()
    membre = comite.membres.first()
    pages = {
        "liste": reverse("gouvernance:list"),
        "instance": reverse("gouvernance:instance", args=[comite.pk]),
        "nouvelle instance": reverse("gouvernance:instance-create"),
        "modifier l'instance": reverse("gouvernance:instance-update", args=[comite.pk]),
        "réunion": reverse("gouvernance:reunion", args=[reunion.pk]),
        "modifier la réunion": reverse("gouvernance:reunion-update", args=[reunion.pk]),
        "présences": reverse("gouvernance:presences", args=[reunion.pk]),
        "modifier un membre": reverse("gouvernance:membre-update", args=[membre.pk]),
        "modifier un point": reverse("gouvernance:point-update", args=[first[0].pk]),
        "modifier une décision": reverse("gouvernance:decision-update", args=[first[1].pk]),
        "modifier une suite": reverse("gouvernance:suite-update", args=[first[2].pk]),
    }
    client = client_for(cdp_ussel)
    for url in pages.values():
        client.get(url)
    small = {name: count_queries(lambda url=url: client.get(url)) for name, url in pages.items()}

    grow(9, 10)
    for i in range(9):
        Membre.objects.create(instance=comite, organisation=f"Partenaire {i}")
        PointOrdreDuJour.objects.create(reunion=reunion, ordre=i + 2, intitule=f"Point {i}")
        decision = Decision.objects.create(reunion=reunion, type="autre", texte=f"Décision {i}")
        Suite.objects.create(decision=decision, intitule="s", responsable=cdp_ussel, echeance=TODAY)
    a_comite(le_blanc)  # another town's instance, not read
    large = {name: count_queries(lambda url=url: client.get(url)) for name, url in pages.items()}
    assert small == large
    print("governance pages, queries at 1 and 10 meetings (equal):", small)


def test_hostile_text_in_what_is_edited_stays_text(client_for, comite, cdp_ussel):
    hostile = '<script>alert("x")</script>'
    membre = Membre.objects.create(instance=comite, organisation=hostile)
    reunion = a_reunion(comite)
    PointOrdreDuJour.objects.create(reunion=reunion, intitule=hostile)
    client = client_for(cdp_ussel)
    pages = [
        client.get(reverse("gouvernance:instance", args=[comite.pk])),
        client.get(reverse("gouvernance:reunion", args=[reunion.pk])),
        client.get(reverse("gouvernance:membre-update", args=[membre.pk])),
        client.post(reverse("gouvernance:membre-delete", args=[membre.pk]), follow=True),
    ]
    for response in pages:
        content = response.content.decode()
        assert hostile not in content
    assert "&lt;script&gt;" in pages[-1].content.decode()  # the message names the member


def test_a_deleted_financing_decision_leaves_the_amount_it_decided(
    client_for, comite, cdp_ussel, ligne
):
    from decimal import Decimal

    reunion = a_reunion(comite)
    client = client_for(cdp_ussel)
    client.post(
        reverse("gouvernance:decision-create", args=[reunion.pk]),
        {"type": "financement", "texte": "DETR à 30 000 €", "ligne": ligne.pk, "montant": "30000"},
    )
    decision = Decision.objects.get()
    response = client.post(reverse("gouvernance:decision-delete", args=[decision.pk]), follow=True)
    assert "restent sur les fiches" in response.content.decode()
    ligne.refresh_from_db()
    assert ligne.montant == Decimal("30000") and not ligne.decisions.exists()
