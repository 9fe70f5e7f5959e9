"""Each role's dashboard: who sees which figures, that they add up to the plan's totals,
and that each costs a fixed number of queries whatever the size of the data."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from actions.models import FicheAction, Indicateur, LigneFinancement
from actions.plan import Livraison, financement_par_financeur, livraison_counts, plan_totals
from tableaux import lecture
from tableaux.cache import renew_everything
from tableaux.dashboards import home_context
from tests.actions.test_plan_readmodel import make_fiche, text
from tests.conftest import count_queries

pytestmark = pytest.mark.django_db

M, S = FicheAction.Maturite, LigneFinancement.Statut
PAST = date(2020, 1, 1)


def fill(beneficiaire, n: int, prefix: str, montant: str):
    """``n`` fiches of every kind, each with two financing lines of distinct statuses."""
    kinds = [
        {"maturite": M.LIVREE},
        {"maturite": M.ENGAGEE},
        {"maturite": M.MATURATION, "date_fin_prevue": PAST, "date_debut_prevue": PAST},
        {"maturite": M.IDEE},
        {"maturite": M.ABANDONNEE},
    ]
    for i in range(n):
        fiche = make_fiche(
            beneficiaire,
            f"{prefix}.{i}",
            cout=Decimal("1000"),
            lignes=[("DETR", montant), ("Banque des Territoires", montant)],
            **kinds[i % len(kinds)],
        )
        fiche.financements.filter(financeur__nom="DETR").update(statut=S.NOTIFIE)
        fiche.financements.filter(financeur__nom="Banque des Territoires").update(
            statut=S.VERSE if i % 2 else S.PREVU
        )


@pytest.fixture
def plans(ussel_la_courtine, le_blanc):
    fill(ussel_la_courtine, 10, "1", "111")
    fill(le_blanc, 5, "2", "99999")  # Le Blanc's distinctive amounts never show in Ussel's
    return ussel_la_courtine, le_blanc


def page(client, url, status=200) -> str:
    response = client.get(url)
    assert response.status_code == status
    return text(response.content.decode())


# The élu ----------------------------------------------------------------------------------


def test_buckets_and_money_by_status_add_up_to_the_plan_totals(plans):
    ussel, _ = plans
    ville = lecture.ville(ussel, timezone.localdate())
    fiches = FicheAction.objects.filter(beneficiaire=ussel)
    counts = livraison_counts(fiches)
    assert {value: n for value, _, n in ville.buckets} == counts
    # The two abandoned fiches are in no bucket and out of the plan's totals, shown apart.
    totals = plan_totals(fiches)
    assert ville.nb_suivies == totals["nb_fiches"] == 8
    assert fiches.filter(maturite=M.ABANDONNEE).count() == totals["nb_abandonnees"] == 2
    assert totals["cout"] == 8000 and totals["cout_abandonne"] == 2000
    assert sum(a for *_, a in ville.par_statut) == plan_totals(fiches)["finance"]
    assert [a for *_, a in ville.par_statut] == financement_par_financeur(fiches)[1]
    assert dict((v, n) for v, _, n in ville.buckets) == {
        Livraison.LIVREE: 2,
        Livraison.ENGAGEE: 2,
        Livraison.EN_ETUDE: 2,
        Livraison.NON_DEMARREE: 2,
    }
    assert ville.nb_retards == 2


def test_elu_sees_where_their_town_stands_and_nothing_of_another(client_for, elu_ussel, plans):
    content = page(client_for(elu_ussel), reverse("portail:home"))
    assert "Où en est ma ville ? — Ussel – La Courtine" in content
    # Money side by side by status, never one headline: 8 × 111 notified (DETR), the two
    # abandoned fiches left out.
    assert "888 € Notifié" in content
    assert "444 € Versé" in content and "444 € Prévu" in content
    assert "Fiches en retard (2)" in content
    assert "99 999" not in content and "Le Blanc" not in content
    # The chart's data is a table next to it.
    assert "Fiches par état d’avancement (données dans le tableau ci-dessus)" in content


def test_elu_of_another_territory_gets_404(client_for, elu_ussel, plans):
    _, le_blanc = plans
    page(client_for(elu_ussel), reverse("tableaux:ville", args=[le_blanc.pk]), 404)


def test_chef_de_projet_sees_stale_fiches_and_quick_links(client_for, cdp_ussel, plans):
    ussel, _ = plans
    FicheAction.objects.filter(reference="1.3").update(
        updated_at=timezone.now() - timedelta(days=200)
    )
    response = client_for(cdp_ussel).get(reverse("portail:home"))
    content = text(response.content.decode())
    assert "Sans mise à jour depuis 3 mois" in content
    assert "1.3 – Fiche 1.3" in content
    assert reverse("actions:fiche-create", args=[ussel.pk]) in response.content.decode()


def test_chef_de_projet_has_a_quick_link_to_measure_each_indicator_the_elu_has_not(
    client_for, cdp_ussel, elu_ussel, plans
):
    ussel, _ = plans
    fiche = FicheAction.objects.get(beneficiaire=ussel, reference="1.1")
    Indicateur.objects.create(
        fiche=fiche, type=Indicateur.Type.RESULTAT, libelle="Logements <rénovés>", unite="logements"
    )
    mesurer = reverse("actions:indicateurs", args=[fiche.pk])
    html = client_for(cdp_ussel).get(reverse("portail:home")).content.decode()
    assert f'href="{mesurer}">Saisir une mesure' in html
    assert "Logements &lt;rénovés&gt;" in html and "<rénovés>" not in html
    assert mesurer not in client_for(elu_ussel).get(reverse("portail:home")).content.decode()


# The préfecture ---------------------------------------------------------------------------


def test_prefecture_table_shows_its_departement_only(client_for, prefecture_36, plans):
    content = page(client_for(prefecture_36), reverse("portail:home"))
    assert "Le Blanc" in content
    assert "Ussel – La Courtine" not in content
    # Département totals: Le Blanc's 5 fiches, none of Ussel's 10.
    assert "36 – Indre 16 4 1 1" in content
    assert "1 110 €" not in content


def test_prefecture_sorts_by_late_fiches_and_rejects_another_departement(
    client_for, prefecture_19, plans
):
    client = client_for(prefecture_19)
    content = page(client, reverse("portail:home") + "?tri=-retards")
    assert "Ussel – La Courtine" in content and "Le Blanc" not in content
    page(client, reverse("portail:home") + "?departement=36", 404)
    # A bad sort is ignored, not an error.
    page(client, reverse("portail:home") + "?tri=evil;drop")


def test_prefecture_export_is_formula_safe_and_its_own(client_for, prefecture_19, plans):
    ussel, _ = plans
    ussel.nom = '=HYPERLINK("http://x")'
    ussel.save()
    client = client_for(prefecture_19)
    response = client.get(reverse("tableaux:beneficiaires-export", args=["csv"]))
    rows = list(
        csv.reader(io.StringIO(b"".join(response.streaming_content).decode()), delimiter=";")
    )
    names = [row[1] for row in rows[1:]]
    assert '\'=HYPERLINK("http://x")' in names
    assert "Le Blanc" not in names
    response = client.get(reverse("tableaux:beneficiaires-export", args=["xlsx"]))
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert sheet.cell(2, 2).value == '=HYPERLINK("http://x")'
    assert sheet.cell(2, 2).data_type == "s"
    assert client.get(reverse("tableaux:beneficiaires-export", args=["pdf"])).status_code == 404


def test_only_prefectures_export_their_table(client_for, elu_ussel, plans):
    response = client_for(elu_ussel).get(reverse("tableaux:beneficiaires-export", args=["csv"]))
    assert response.status_code == 403


# National ---------------------------------------------------------------------------------


def test_national_home_shows_the_programme_not_the_communes_of_france(client_for, national, plans):
    content = page(client_for(national), reverse("portail:home"))
    assert "Le programme en chiffres — France" in content
    assert "15 actions suivies" not in content  # abandoned ones are not followed
    assert "12 actions suivies" in content
    assert "Nouvelle-Aquitaine" in content and "Centre-Val de Loire" in content


def test_drill_down_france_region_departement(client_for, national, plans):
    client = client_for(national)
    indre = page(client, reverse("tableaux:departement", args=["36"]))
    assert "Le Blanc" in indre and "Ussel" not in indre
    assert "4 actions suivies" in indre
    region = page(client, reverse("tableaux:region", args=["24"]))
    assert "36 – Indre" in region and "Corrèze" not in region
    page(client, reverse("tableaux:region", args=["99"]), 404)
    response = client.get(reverse("tableaux:france") + "?format=csv")
    rows = list(
        csv.reader(io.StringIO(b"".join(response.streaming_content).decode()), delimiter=";")
    )
    assert [rows[0][0].lstrip("\ufeff"), *rows[0][1:3]] == ["Code", "Territoire", "Bénéficiaires"]


def test_programme_pages_are_for_national_readers(client_for, prefecture_36, elu_ussel, partenaire):
    for user in (prefecture_36, elu_ussel):
        page(client_for(user), reverse("tableaux:departement", args=["36"]), 403)
    page(client_for(partenaire), reverse("tableaux:departement", args=["36"]))


# Queries: a fixed number whatever the size ------------------------------------------------


DASHBOARD = {
    "elu_ussel": "tableaux/includes/ville.html",
    "cdp_ussel": "tableaux/includes/ville.html",
    "prefecture_19": "tableaux/includes/prefecture.html",
    "national": "tableaux/includes/programme.html",
    "partenaire": "tableaux/includes/programme.html",
}


@pytest.mark.parametrize(
    "who,url",
    [
        ("elu_ussel", "portail:home"),
        ("prefecture_19", "portail:home"),
        ("national", "portail:home"),
        ("cdp_ussel", "portail:home"),
        ("partenaire", "portail:home"),
    ],
)
def test_dashboards_cost_a_fixed_number_of_queries(request, client_for, who, url, plans):
    ussel, le_blanc = plans
    client = client_for(request.getfixturevalue(who))
    client.get(reverse(url))  # the header's unread count, then read from the cache
    # Both counted cold (every territory renewed, as a change to a plan renews its own):
    # whatever the cache still holds, the same queries at both sizes.
    renew_everything()
    small = count_queries(lambda: client.get(reverse(url)))
    fill(ussel, 15, "3", "7")
    fill(le_blanc, 15, "4", "7")
    client.get(reverse(url))  # what the fills renewed (the role cards naming Ussel) read again
    renew_everything()
    large = count_queries(lambda: client.get(reverse(url)))
    assert small == large
    # The dashboard's own figures, read and rendered (the figures are read lazily, when the
    # cached fragment is missing, as always here): at most 12 queries, at both sizes.
    web = RequestFactory().get("/")
    web.user = request.getfixturevalue(who)
    web.user.perimeter  # noqa: B018 - read once, as the middleware does
    with CaptureQueriesContext(connection) as context:
        render_to_string(DASHBOARD[who], home_context(web), request=web)
    assert len(context) <= 12, "\n".join(q["sql"][:150] for q in context.captured_queries)


def test_a_partner_sees_where_its_own_money_goes(client_for, partenaire, plans):
    content = page(client_for(partenaire), reverse("portail:home"))
    assert "Où vont vos financements (Banque des Territoires)" in content
    # Ussel's Banque des Territoires lines: 4 × 111 paid, 4 × 111 planned (Nouvelle-Aquitaine),
    # those of the two abandoned fiches left out.
    assert "Nouvelle-Aquitaine444 €0 €0 €444 €" in content
    indre = page(client_for(partenaire), reverse("tableaux:departement", args=["36"]))
    assert "Le Blanc" in indre and "Ussel" not in indre.split("Vos financements par territoire")[1]


def test_national_staff_have_no_partner_table(client_for, national, plans):
    assert "Où vont vos financements" not in page(client_for(national), reverse("portail:home"))


def test_national_figures_are_computed_once_per_period(client_for, national, plans, settings):
    from django.core.cache import cache

    settings.PROGRAMME_CACHE_TIMEOUT = 600
    client = client_for(national)
    url = reverse("tableaux:departement", args=["36"])
    first = count_queries(lambda: client.get(url))
    content = page(client, url)
    assert count_queries(lambda: client.get(url)) < first
    assert "4 actions suivies" in content and "Chiffres calculés le" in content
    cache.clear()  # leave no shared figures behind for the next tests
