"""A change renews only the cache versions of the territories it touches (tableaux/cache.py,
tableaux/signals.py): another territory's dashboards stay warm, to the query; and the
programme's figures are precomputed for every territory and never computed for a reader
while any was computed before (stale-while-revalidate)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from actions.models import FicheAction, Financeur
from communes.models import Beneficiaire, Departement, MembreBeneficiaire
from postes.models import Poste
from pvd.cache import data_rewritten
from tableaux import cache as dashboard_cache
from tableaux import lecture
from tableaux import signals as tableaux_signals
from tests.actions.test_plan_readmodel import text
from tests.conftest import count_queries
from tests.postes.conftest import make_poste
from tests.tableaux.test_dashboards import fill

pytestmark = pytest.mark.django_db

HOME = reverse("portail:home")


@pytest.fixture(autouse=True)
def fragment_cache(production_caches):
    """Page fragments cached as in production (tests/conftest.py)."""


@pytest.fixture
def plans(ussel_la_courtine, le_blanc):
    fill(ussel_la_courtine, 5, "1", "111")
    fill(le_blanc, 5, "2", "999")
    return ussel_la_courtine, le_blanc


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def warm(client) -> int:
    """The home's query count once its fragments are cached (two visits before)."""
    client.get(HOME)
    client.get(HOME)
    return count_queries(lambda: client.get(HOME))


def queries(client) -> int:
    return count_queries(lambda: client.get(HOME))


@pytest.fixture
def renewed(monkeypatch):
    """The scopes each write renews, recorded (and renewed as usual)."""
    scopes: set[str] = set()

    def record(touched):
        scopes.update(touched)
        dashboard_cache.renew(touched)

    monkeypatch.setattr(tableaux_signals, "renew", record)
    return scopes


def indre_scopes(le_blanc, *families: str) -> set[str]:
    """Le Blanc's territories, for the dashboards and ``families`` (a fiche: the map's too)."""
    scopes = {f"beneficiaire:{le_blanc.pk}", "departement:36", "region:24", "programme"}
    return scopes | {f"{family}|{scope}" for family in families for scope in scopes}


def test_a_change_in_the_indre_leaves_the_ussel_home_warm_and_the_indre_table_cold(
    elu_ussel, prefecture_36, plans, renewed
):
    _, le_blanc = plans
    ussel, indre = logged_in(elu_ussel), logged_in(prefecture_36)
    ussel_warm, indre_warm = warm(ussel), warm(indre)

    fiche = FicheAction.objects.get(beneficiaire=le_blanc, reference="2.1")
    fiche.maturite = FicheAction.Maturite.LIVREE
    fiche.save()

    assert renewed == indre_scopes(
        le_blanc, "carte-fiches"
    )  # Le Blanc, the Indre, Centre-Val de Loire, France
    assert queries(ussel) == ussel_warm
    assert queries(indre) > indre_warm
    assert queries(indre) == indre_warm  # and warm again


def test_a_change_in_ussel_sends_the_ussel_home_cold_and_leaves_the_indre_warm(
    elu_ussel, cdp_ussel, prefecture_36, plans, renewed
):
    ussel_la_courtine, _ = plans
    elu, cdp, indre = logged_in(elu_ussel), logged_in(cdp_ussel), logged_in(prefecture_36)
    elu_warm, cdp_warm, indre_warm = warm(elu), warm(cdp), warm(indre)

    ligne = FicheAction.objects.get(beneficiaire=ussel_la_courtine, reference="1.0").financements
    ligne = ligne.get(financeur__nom="DETR")
    ligne.montant = Decimal("1000")
    ligne.save()

    assert f"beneficiaire:{ussel_la_courtine.pk}" in renewed and "departement:19" in renewed
    assert queries(elu) > elu_warm and queries(cdp) > cdp_warm
    assert queries(indre) == indre_warm
    assert "1 333 € Notifié" in text(elu.get(HOME).content.decode())


def test_a_beneficiary_changing_departement_renews_both(
    prefecture_19, prefecture_36, plans, renewed
):
    _, le_blanc = plans
    correze, indre = logged_in(prefecture_19), logged_in(prefecture_36)
    correze_warm, indre_warm = warm(correze), warm(indre)

    le_blanc.departement = Departement.objects.get(code="19")
    le_blanc.save()

    assert {"departement:36", "region:24", "departement:19", "region:75"} <= renewed
    assert queries(correze) > correze_warm and queries(indre) > indre_warm


def test_a_member_commune_moving_renews_its_old_and_new_beneficiary(
    ussel_la_courtine, le_blanc, renewed
):
    membre = MembreBeneficiaire.objects.filter(beneficiaire=ussel_la_courtine).first()
    membre.beneficiaire = le_blanc
    membre.save()

    assert {f"beneficiaire:{ussel_la_courtine.pk}", f"beneficiaire:{le_blanc.pk}"} <= renewed


def test_a_post_link_renews_the_beneficiaries_linked_or_unlinked_only(
    ussel_la_courtine, le_blanc, renewed
):
    poste = make_poste(ussel_la_courtine, etat=Poste.Etat.VACANT)
    renewed.clear()
    poste.beneficiaires.add(le_blanc)
    assert renewed == indre_scopes(le_blanc)

    renewed.clear()
    poste.beneficiaires.remove(le_blanc)
    assert renewed == indre_scopes(le_blanc)

    poste.beneficiaires.add(le_blanc)
    renewed.clear()
    poste.beneficiaires.clear()
    assert {f"beneficiaire:{ussel_la_courtine.pk}", f"beneficiaire:{le_blanc.pk}"} <= renewed

    renewed.clear()
    le_blanc.postes.add(poste)  # from the other side
    assert renewed == indre_scopes(le_blanc)


def test_a_deleted_fiche_renews_its_territory_read_before_it_goes(plans, renewed):
    _, le_blanc = plans
    FicheAction.objects.get(beneficiaire=le_blanc, reference="2.2").delete()
    assert renewed == indre_scopes(le_blanc, "carte-fiches")


def test_the_funders_catalogue_reaches_every_territory(elu_ussel, prefecture_36, plans):
    elu, indre = logged_in(elu_ussel), logged_in(prefecture_36)
    elu_warm, indre_warm = warm(elu), warm(indre)
    Financeur.objects.filter(nom="DETR").get().save()
    assert queries(elu) > elu_warm and queries(indre) > indre_warm


def test_a_bulk_write_reaches_every_territory(elu_ussel, plans):
    from pvd.cache import data_rewritten

    elu = logged_in(elu_ussel)
    elu_warm = warm(elu)
    data_rewritten()
    assert queries(elu) > elu_warm


def test_every_declared_path_leads_to_the_beneficiary():
    """Each read model's path (tableaux/lecture.py READS, carte/choroplethe.py READS) is one
    the ORM follows to communes.Beneficiaire: the territory of a write is read along it."""
    for label, path in tableaux_signals.PATHS.items():
        if path is None:
            continue
        model = tableaux_signals.WATCHED[label]
        for name in filter(None, path.split("__")):
            model = model._meta.get_field(name).related_model
        assert model is Beneficiaire, label


# The programme's figures -------------------------------------------------------------------


def summary(figures: dict) -> dict:
    """What a programme page shows, comparable (model rows by their key and annotations)."""
    result = {"chiffres": figures["chiffres"]}
    if "lignes_territoires" in figures:
        result["lignes"] = [(t.code, rows) for t, rows in figures["lignes_territoires"]]
    else:
        result["lignes"] = [ligne(b) for b in figures["lignes_beneficiaires"]]
    return result


def ligne(b) -> tuple:
    """What a département's page and export show of a beneficiary."""
    buckets = tuple(getattr(b, f"nb_{value}") for value in lecture.Livraison.values)
    return (b.pk, b.nom, b.nb_fiches, b.nb_retards, buckets, b.cout, b.decide, b.date_adhesion)


def test_a_departements_rows_are_the_prefecture_tables_figures(plans, today):
    """The département page's rows, three grouped queries for any number of beneficiaries,
    agree with the préfecture's table (its own queries, compiled once per process)."""
    ussel, _ = plans
    FicheAction.objects.filter(beneficiaire=ussel, reference="1.1").update(
        date_fin_prevue=today - timedelta(days=3)
    )
    actifs = Beneficiaire.objects.filter(statut__in=Beneficiaire.STATUTS_ACTIFS)
    table = lecture.beneficiaires_table(actifs, today)  # by name
    with CaptureQueriesContext(connection) as grouped:
        rows = lecture.lignes_beneficiaires(actifs, today)
    assert [ligne(b) for b in rows] == [ligne(b) for b in table]
    assert any(b.nb_fiches and b.decide for b in rows)
    assert len(grouped) == 3


def test_the_prefecture_table_puts_unknowns_last_and_adds_up_its_rows(plans, today):
    """The table is sorted over its grouped rows: what is unknown (no cost, no fiche) comes
    last in both directions; its totals per département, summed from its rows, are those
    ``totaux_par`` counts in SQL."""
    ussel, le_blanc = plans
    FicheAction.objects.filter(beneficiaire=le_blanc).delete()
    beneficiaires = Beneficiaire.objects.filter(pk__in=[ussel.pk, le_blanc.pk])
    for tri in ("part", "-part", "maj", "-maj"):
        rows = lecture.beneficiaires_table(beneficiaires, today, tri)
        assert [b.pk for b in rows] == [ussel.pk, le_blanc.pk], tri
    rows = lecture.beneficiaires_table(beneficiaires, today, "-nom")
    assert [b.nom for b in rows] == sorted([ussel.nom, le_blanc.nom], reverse=True)
    totaux = lecture.totaux_du_tableau(rows)
    expected = lecture.totaux_par(beneficiaires, "departement", today)
    assert set(totaux) == set(expected) == {ussel.departement_id, le_blanc.departement_id}
    for code, counted in expected.items():
        counted.pop("departement")
        assert {name: totaux[code][name] for name in counted} == counted, code
    assert totaux[ussel.departement_id]["nb_fiches"] == 4  # the abandoned one left out


def test_every_territorys_figures_are_precomputed_as_one_territory_computes_them(
    plans, partenaire, settings, monkeypatch
):
    settings.PROGRAMME_CACHE_TIMEOUT = 600
    today = timezone.localdate()
    make_poste(plans[0], etat=Poste.Etat.VACANT)
    one_territory = []
    for name in ("programme", "partenaire"):
        function = getattr(lecture, name)
        monkeypatch.setattr(
            lecture, name, lambda *args, f=function, n=name: one_territory.append(n) or f(*args)
        )
    with CaptureQueriesContext(connection) as refresh:
        stored = dashboard_cache.refresh_programme(today)
    monkeypatch.undo()
    regions = sorted(set(Departement.objects.values_list("region_id", flat=True)))
    departements = sorted(Departement.objects.values_list("code", flat=True))
    assert stored == {"france": 1, "region": len(regions), "departement": len(departements)}
    # Grouped per level, not per territory: only France's are computed as one territory's.
    assert one_territory == ["programme", "partenaire"]
    assert len(refresh) <= 40

    beneficiaires = Beneficiaire.objects.all()
    actifs = beneficiaires.filter(statut__in=Beneficiaire.STATUTS_ACTIFS)
    funders = dashboard_cache.partner_funder_sets()
    assert funders
    for level, codes in (("france", [None]), ("region", regions), ("departement", departements)):
        for code in codes:
            kept = cache.get(dashboard_cache.programme_key(level, code))["figures"]
            scope = beneficiaires
            if level == "region":
                scope = beneficiaires.filter(departement__region_id=code)
            elif level == "departement":
                scope = beneficiaires.filter(departement_id=code)
            assert summary(kept) == summary(lecture.programme(level, code, scope, today)), code
            for financeurs in funders:
                key = dashboard_cache.programme_key(
                    level, code, dashboard_cache.funders_key(financeurs)
                )
                part = cache.get(key)["figures"]
                alone = lecture.partenaire(level, actifs & scope, financeurs)
                assert part["par_territoire"] == alone["par_territoire"], code
                assert part["par_axe"] == alone["par_axe"], code


def test_the_national_and_partner_homes_never_compute_precomputed_figures(
    client_for, national, partenaire, plans, settings
):
    settings.PROGRAMME_CACHE_TIMEOUT = 600
    dashboard_cache.refresh_programme()
    for user in (national, partenaire):
        client = logged_in(user)
        served = warm(client)
        cache.clear()
        client.get(reverse("rappels:list"))  # the header's unread count, then cached
        assert queries(client) > served + 4  # nothing precomputed: the figures computed


def test_expired_figures_are_served_while_a_refresh_is_queued(
    national, plans, settings, django_capture_on_commit_callbacks, time_machine
):
    _, le_blanc = plans
    settings.PROGRAMME_CACHE_TIMEOUT = 600
    dashboard_cache.refresh_programme()
    client = logged_in(national)
    url = reverse("tableaux:departement", args=["36"])
    client.get(url)
    served = count_queries(lambda: client.get(url))
    before = client.get(url).content.decode()
    assert "4 actions suivies" in " ".join(before.split())

    # A change there, and the figures a quarter of an hour old: stale.
    FicheAction.objects.filter(beneficiaire=le_blanc, reference="2.3").get().delete()
    time_machine.move_to(timezone.now() + timedelta(minutes=15))
    with django_capture_on_commit_callbacks() as queued:
        with CaptureQueriesContext(connection) as first:
            content = client.get(url).content.decode()
        again = count_queries(lambda: client.get(url))
    # The reader did not wait for them: no plan read, the last figures served.
    assert not [q for q in first if "actions_ficheaction" in q["sql"]]
    assert again == served
    assert "4 actions suivies" in " ".join(content.split())
    refreshes = [c for c in queued if "refresh_territory" in repr(c)]
    assert len(refreshes) == 1  # once, whatever the number of readers
    refreshes[0]()
    assert "3 actions suivies" in " ".join(client.get(url).content.decode().split())


def test_figures_never_computed_are_computed_for_the_first_reader(national, plans, settings):
    settings.PROGRAMME_CACHE_TIMEOUT = 600
    client = logged_in(national)
    content = client.get(reverse("tableaux:departement", args=["36"])).content.decode()
    assert "Chiffres calculés le" in content
    key = dashboard_cache.programme_key("departement", "36")
    assert cache.get(key)["figures"]["chiffres"].nb_beneficiaires >= 1


def test_the_map_is_renewed_by_what_it_reads_only(prefecture_36, plans, renewed):
    """The map's read-model (carte/choroplethe.py READS) has its own versions: a fiche
    changed leaves it warm, a convention signed sends it back to the database."""
    from conventions.models import Convention

    _, le_blanc = plans
    client = logged_in(prefecture_36)
    url = reverse("carte:carte")
    client.get(url)
    client.get(url)
    warm_map = count_queries(lambda: client.get(url))

    FicheAction.objects.get(beneficiaire=le_blanc, reference="2.1").save()
    assert not [scope for scope in renewed if scope.startswith("carte|")]
    assert count_queries(lambda: client.get(url)) == warm_map

    Convention.objects.create(
        beneficiaire=le_blanc,
        type=Convention.Type.CADRE,
        titre="Convention-cadre",
        statut=Convention.Statut.SIGNEE,
        date_signature=timezone.localdate(),
    )
    assert {"carte|departement:36", f"beneficiaire:{le_blanc.pk}"} <= renewed
    assert count_queries(lambda: client.get(url)) > warm_map


# Governance's steering figures (gouvernance/pilotage.py), cached per territory ------------


def held_meeting(instance, day) -> None:
    from datetime import time

    from gouvernance.models import Reunion

    Reunion.objects.create(
        instance=instance,
        date=day,
        heure_debut=time(14),
        heure_fin=time(16),
        lieu="Préfecture",
        statut=Reunion.Statut.TENUE,
    )


@pytest.fixture
def late_clct_36(territoires, today):
    """The Indre's CLCT, created two years ago and never met: late."""
    from gouvernance.models import Instance

    clct = Instance.objects.create(
        type=Instance.Type.CLCT, nom="CLCT de l'Indre", departement_id="36", reunions_par_an=2
    )
    Instance.objects.filter(pk=clct.pk).update(created_at=timezone.now() - timedelta(days=730))
    return clct


def test_a_meeting_held_in_the_indre_renews_its_governance_figures_only(
    national, prefecture_36, prefecture_19, plans, late_clct_36, today, renewed
):
    nation, indre, correze = logged_in(national), logged_in(prefecture_36), logged_in(prefecture_19)
    nation_warm, indre_warm, correze_warm = warm(nation), warm(indre), warm(correze)
    assert "1 instance en retard de réunion" in text(indre.get(HOME).content.decode())

    held_meeting(late_clct_36, today)

    # The CLCT has no beneficiary: its own département, its région and France.
    assert renewed == {
        "gouvernance|departement:36",
        "gouvernance|region:24",
        "gouvernance|programme",
    }
    assert queries(correze) == correze_warm
    assert queries(indre) > indre_warm and queries(nation) > nation_warm
    assert "aucune instance en retard de réunion" in text(indre.get(HOME).content.decode())
    assert queries(indre) == indre_warm  # and warm again


def test_a_comite_de_projet_renews_its_beneficiary_territories(plans, renewed, today):
    from gouvernance.models import Instance

    ussel_la_courtine, _ = plans
    comite = Instance.objects.create(
        type=Instance.Type.COMITE_PROJET, nom="Comité", beneficiaire=ussel_la_courtine
    )
    renewed.clear()
    held_meeting(comite, today)
    assert renewed == {
        f"gouvernance|{scope}"
        for scope in (
            f"beneficiaire:{ussel_la_courtine.pk}",
            "departement:19",
            "region:75",
            "programme",
        )
    }


def test_the_governance_figures_read_only_what_their_reads_declare(
    prefecture_36, plans, late_clct_36, today
):
    """Every table the cached figures read is watched (gouvernance/pilotage.py ``READS``) or
    territorial reference data (tableaux/signals.py ``UNWATCHED``)."""
    import re

    from django.apps import apps

    from gouvernance.pilotage import READS, pilotage

    held_meeting(late_clct_36, today)
    with CaptureQueriesContext(connection) as captured:
        pilotage(["36"], today)
    read = {
        table
        for query in captured.captured_queries
        for table in re.findall(r'(?:FROM|JOIN) "(\w+)"', query["sql"])
    }
    allowed = {model._meta.db_table for model in READS}
    allowed |= {apps.get_model(label)._meta.db_table for label in tableaux_signals.UNWATCHED}
    assert read and read <= allowed, read - allowed


def test_the_partners_part_is_rendered_once_per_computation_of_its_figures(
    partenaire, plans, settings, today
):
    """The partner's « Où vont vos financements », rendered from the figures kept for every
    partner of its funders, is cached per computation of those figures: new figures show at
    once; renewing every territory's version serves the same rendering of the same kept
    figures, a bulk write of the reference data renders it again."""
    from django.core.cache import caches

    from tableaux.dashboards import partner_cache_key

    settings.PROGRAMME_CACHE_TIMEOUT = 600
    ussel, _ = plans
    dashboard_cache.refresh_programme(today)
    client = logged_in(partenaire)
    assert "Nouvelle-Aquitaine222 €0 €0 €222 €" in text(client.get(HOME).content.decode())
    assert [key for key in caches["template_fragments"]._cache if "tableaux-partenaire" in key]

    # More Banque des Territoires money paid in Ussel: shown once the figures are computed.
    fiche = FicheAction.objects.get(beneficiaire=ussel, reference="1.1")
    fiche.financements.filter(financeur__nom="Banque des Territoires").update(
        montant=Decimal("1000")
    )
    dashboard_cache.refresh_programme(today)
    assert "Nouvelle-Aquitaine222 €0 €0 €1 111 €" in text(client.get(HOME).content.decode())

    # Every territory renewed: the kept figures are the same, so is their rendering; the
    # reference data rewritten (the territories' names): rendered again, under another key.
    funders = dashboard_cache.funders_key(Financeur.objects.filter(nom="Banque des Territoires"))
    stored = cache.get(dashboard_cache.programme_key("france", None, funders))["figures"]
    before = partner_cache_key(stored, "france", None)
    dashboard_cache.renew_everything()
    assert partner_cache_key(stored, "france", None) == before
    data_rewritten()
    assert partner_cache_key(stored, "france", None) != before
