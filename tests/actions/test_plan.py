import html
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils.html import strip_tags

from actions.models import Axe, FicheAction, Financeur, LigneFinancement, ensure_axes
from actions.plan import timeline
from tests.conftest import count_queries

pytestmark = pytest.mark.django_db


def text(response) -> str:
    """The page as a reader sees it: no tags, entities decoded, one space between words."""
    content = html.unescape(strip_tags(response.content.decode()))
    return " ".join(content.replace("\xa0", " ").split())


def financeur(nom: str) -> Financeur:
    return Financeur.objects.get(nom=nom)


def fiche(beneficiaire, axe_numero: int, reference: str, cout, lignes=(), **fields) -> FicheAction:
    """A fiche with its financing lines, given as (funder, amount, status)."""
    created = FicheAction.objects.create(
        beneficiaire=beneficiaire,
        axe=beneficiaire.axes.get(numero=axe_numero),
        reference=reference,
        titre=fields.pop("titre", f"Fiche {reference}"),
        cout_total=cout,
        **fields,
    )
    for nom, montant, statut in lignes:
        LigneFinancement.objects.create(
            fiche=created, financeur=financeur(nom), montant=montant, statut=statut
        )
    return created


@pytest.fixture
def plan_ussel(ussel_la_courtine):
    """Four fiches in two axes; 2.1 is financed beyond its cost, 2.2 has no cost yet."""
    ensure_axes(ussel_la_courtine)
    b = ussel_la_courtine
    fiche(b, 1, "1.1", 100000, [("DSIL", 40000, "notifie"), ("Région", 20000, "prevu")])
    fiche(b, 1, "1.2", 50000, [("DSIL", 10000, "verse")])
    fiche(
        b,
        2,
        "2.1",
        200000,
        [("DETR", 80000, "sollicite"), ("DSIL", 30000, "notifie"), ("Région", 100000, "prevu")],
    )
    fiche(b, 2, "2.2", None)
    return b


def plan_url(beneficiaire) -> str:
    return reverse("actions:plan", args=[beneficiaire.pk])


# Totals -------------------------------------------------------------------------------------


def test_axis_totals_sum_costs_and_financing_without_repeating_fiches(
    client_for, cdp_ussel, plan_ussel
):
    response = client_for(cdp_ussel).get(plan_url(plan_ussel))
    axes = {axe.numero: (axe, fiches) for axe, fiches in response.context["plan"].axes}
    habitat, fiches_habitat = axes[1]
    assert [f.reference for f in fiches_habitat] == ["1.1", "1.2"]
    assert (habitat.nb_fiches, habitat.cout, habitat.finance) == (2, 150000, 70000)
    assert (habitat.reste, habitat.depassement) == (80000, 0)
    commerce, _ = axes[2]
    assert (commerce.nb_fiches, commerce.cout, commerce.finance) == (2, 200000, 210000)
    assert (commerce.reste, commerce.depassement) == (0, 10000)
    assert axes[3][0].nb_fiches == 0 and axes[3][0].cout == 0
    fiche_21 = next(f for f in axes[2][1] if f.reference == "2.1")
    assert fiche_21.finance == 210000


def test_grand_totals(client_for, cdp_ussel, plan_ussel):
    totals = client_for(cdp_ussel).get(plan_url(plan_ussel)).context["plan"].totals
    assert totals == {
        "nb_fiches": 4,
        "cout": Decimal("350000"),
        "finance": Decimal("280000"),
        "reste": Decimal("70000"),
        "depassement": Decimal("0"),
        "nb_abandonnees": 0,
        "cout_abandonne": Decimal("0"),
    }


def test_an_abandoned_fiche_is_listed_but_shown_apart_from_the_totals(
    client_for, cdp_ussel, plan_ussel
):
    fiche(plan_ussel, 1, "1.3", 30000, [("DSIL", 5000, "notifie")], maturite="abandonnee")
    response = client_for(cdp_ussel).get(plan_url(plan_ussel))
    plan = response.context["plan"]
    assert (plan.totals["nb_fiches"], plan.totals["cout"], plan.totals["finance"]) == (
        4,
        350000,
        280000,
    )
    assert (plan.totals["nb_abandonnees"], plan.totals["cout_abandonne"]) == (1, 30000)
    habitat = next(axe for axe, _ in plan.axes if axe.numero == 1)
    assert (habitat.nb_fiches, habitat.cout, habitat.nb_abandonnees) == (2, 150000, 1)
    assert sum(ligne.total for ligne in plan.financeurs) == 280000  # not its 5 000
    content = text(response)
    assert "et 1 fiche abandonnée (coût 30 000 €), hors totaux" in content
    assert "1 abandonnée hors totaux" in content
    assert "Fiche 1.3" in content  # still listed in its axis


def test_financing_by_funder_and_status(client_for, cdp_ussel, plan_ussel):
    context = client_for(cdp_ussel).get(plan_url(plan_ussel)).context
    statuts = [label for _, label in context["plan"].statuts]
    assert statuts == ["Prévu", "Sollicité", "Notifié", "Versé"]
    rows = [(r.nom, r.montants, r.total) for r in context["plan"].financeurs]
    assert rows == [
        ("DETR", [0, 80000, 0, 0], 80000),
        ("DSIL", [0, 0, 70000, 10000], 80000),
        ("Région", [120000, 0, 0, 0], 120000),
    ]
    assert context["plan"].totaux_statut == [120000, 80000, 70000, 10000]


def test_totals_as_rendered(client_for, cdp_ussel, plan_ussel):
    page = text(client_for(cdp_ussel).get(plan_url(plan_ussel)))
    assert "350 000 € coût total" in page
    assert "280 000 € de financements" in page
    assert "70 000 € reste à financer" in page
    assert "coût 150 000 € · financements 70 000 € · reste à financer 80 000 €" in page
    assert "coût 200 000 € · financements 210 000 € · 10 000 € au-delà du coût" in page


def test_filters_narrow_fiches_and_totals(client_for, cdp_ussel, plan_ussel, today):
    client = client_for(cdp_ussel)
    response = client.get(plan_url(plan_ussel), {"financeur": financeur("DETR").pk})
    axes = response.context["plan"].axes
    assert [[f.reference for f in fiches] for _, fiches in axes] == [["2.1"]]
    assert "Aucune fiche action ne correspond" not in text(response)
    # The fiche is kept whole: all its lines, not only the DETR one.
    assert response.context["plan"].totals["finance"] == 210000

    axe = plan_ussel.axes.get(numero=1)
    response = client.get(plan_url(plan_ussel), {"axe": axe.pk, "maturite": "idee"})
    assert response.context["plan"].totals["nb_fiches"] == 2
    assert [a.numero for a, _ in response.context["plan"].axes] == [1]

    FicheAction.objects.filter(reference="1.2").update(date_fin_prevue=today - timedelta(days=1))
    FicheAction.objects.filter(reference="2.1").update(
        date_fin_prevue=today - timedelta(days=1), maturite="livree"
    )
    response = client.get(plan_url(plan_ussel), {"en_retard": "on"})
    axes = response.context["plan"].axes
    assert [[f.reference for f in fiches] for _, fiches in axes] == [["1.2"]]
    assert "En retard" in text(response)


def test_no_match_says_so(client_for, cdp_ussel, plan_ussel):
    response = client_for(cdp_ussel).get(plan_url(plan_ussel), {"financeur": financeur("FEDER").pk})
    assert response.context["plan"].axes == []
    assert "Aucune fiche action ne correspond" in text(response)


def build_plan(beneficiaire, size: int) -> None:
    ensure_axes(beneficiaire)
    for i in range(size):
        fiche(
            beneficiaire,
            i % 6 + 1,
            f"{i % 6 + 1}.{i}",
            100000 + i,
            [("DSIL", 1000, "prevu"), ("Région", 2000, "notifie"), ("FEDER", 3000, "verse")],
            date_debut_prevue=date(2023, 1, 1) + timedelta(days=30 * i),
            date_fin_prevue=date(2025, 1, 1) + timedelta(days=30 * i),
        )


def test_plan_page_queries_do_not_grow_with_fiches(client_for, cdp_ussel, ussel_la_courtine):
    client = client_for(cdp_ussel)
    url = plan_url(ussel_la_courtine)
    build_plan(ussel_la_courtine, 3)
    client.get(url)  # session and caches warmed up
    small = count_queries(lambda: client.get(url))
    filtered = count_queries(lambda: client.get(url, {"financeur": financeur("DSIL").pk}))
    build_plan_more = FicheAction.objects.count()
    FicheAction.objects.all().delete()
    build_plan(ussel_la_courtine, 50)
    assert FicheAction.objects.count() == 50 > build_plan_more
    large = count_queries(lambda: client.get(url))
    assert small == large
    assert filtered == count_queries(lambda: client.get(url, {"financeur": financeur("DSIL").pk}))
    # Session, user, roles, beneficiary, its axes seeded?, its chef de projet; the fiches,
    # their totals by axis, the axes, financing by funder; the filter form's axes and funders.
    assert large <= 12


# Timeline -----------------------------------------------------------------------------------


def test_timeline_places_bars_over_the_years_and_today(ussel_la_courtine):
    ensure_axes(ussel_la_courtine)
    longue = fiche(
        ussel_la_courtine,
        1,
        "1.1",
        1000,
        date_debut_prevue=date(2024, 1, 1),
        date_fin_prevue=date(2025, 12, 31),
    )
    courte = fiche(
        ussel_la_courtine,
        1,
        "1.2",
        1000,
        date_debut_prevue=date(2025, 1, 1),
        date_fin_prevue=date(2025, 6, 30),
    )
    sans_fin = fiche(ussel_la_courtine, 2, "2.1", 1000, date_debut_prevue=date(2025, 1, 1))
    result = timeline([longue, courte, sans_fin], today=date(2025, 7, 2))
    assert [y["annee"] for y in result["years"]] == ["2024", "2025"]
    bars = {b["fiche"].reference: b for b in result["bars"]}
    assert (bars["1.1"]["left"], bars["1.1"]["width"]) == ("0.000%", "100.000%")
    # 2025-01-01 is day 366 of 731; six months of 181 days; 2 July is day 548.
    assert (bars["1.2"]["left"], bars["1.2"]["width"]) == ("50.068%", "24.761%")
    assert result["today"] == "74.966%"
    assert result["undated"] == [sans_fin]
    # Late fiches: the span reaches today.
    later = timeline([longue], today=date(2027, 3, 1))
    assert [y["annee"] for y in later["years"]] == ["2024", "2025", "2026", "2027"]


def test_plan_page_draws_the_timeline(client_for, cdp_ussel, ussel_la_courtine):
    ensure_axes(ussel_la_courtine)
    fiche(
        ussel_la_courtine,
        1,
        "1.1",
        1000,
        date_debut_prevue=date(2025, 1, 1),
        date_fin_prevue=date(2025, 6, 30),
    )
    fiche(ussel_la_courtine, 2, "2.1", 1000, date_debut_prevue=date(2025, 1, 1))
    response = client_for(cdp_ussel).get(plan_url(ussel_la_courtine))
    bar = response.context["plan"].timeline["bars"][0]
    html = response.content.decode()
    # Positions sit in the nonce'd <style>: the CSP refuses style attributes.
    assert f".pvd-timeline__bar--1 {{ left: {bar['left']}; width: {bar['width']}; }}" in html
    assert 'class="pvd-timeline__bar pvd-timeline__bar--1' in html
    assert 'style="' not in html
    page = text(response)
    assert "du 01/01/2025 au 30/06/2025" in page
    assert "début prévu le 01/01/2025, fin non renseignée" in page


# Access -------------------------------------------------------------------------------------


def test_opening_an_empty_plan_writes_nothing_and_its_editor_starts_it_by_post(
    client_for, cdp_ussel, ussel_la_courtine
):
    client = client_for(cdp_ussel)
    response = client.get(plan_url(ussel_la_courtine))
    assert response.status_code == 200
    assert "Commencer le plan d’action" in text(response)
    assert not Axe.objects.filter(beneficiaire=ussel_la_courtine).exists()
    # The pages that write need a started plan: their GET sends back to the plan.
    for name in ("actions:axes", "actions:fiche-create"):
        response = client.get(reverse(name, args=[ussel_la_courtine.pk]))
        assert response.status_code == 302
        assert response.url == plan_url(ussel_la_courtine)
    assert not Axe.objects.filter(beneficiaire=ussel_la_courtine).exists()

    response = client.post(reverse("actions:plan-start", args=[ussel_la_courtine.pk]))
    assert response.status_code == 302
    response = client.get(plan_url(ussel_la_courtine))
    assert [a.nom for a, _ in response.context["plan"].axes][:2] == [
        "Habitat",
        "Développement économique et commercial",
    ]
    assert Axe.objects.filter(beneficiaire=ussel_la_courtine).count() == 6
    assert "Nouvelle fiche action" in text(response)
    client.post(reverse("actions:plan-start", args=[ussel_la_courtine.pk]))  # once only
    assert Axe.objects.filter(beneficiaire=ussel_la_courtine).count() == 6


@pytest.mark.parametrize("who", ["elu_ussel", "prefecture_19", "partenaire"])
def test_readers_may_not_start_a_plan(request, client_for, who, ussel_la_courtine):
    client = client_for(request.getfixturevalue(who))
    response = client.post(reverse("actions:plan-start", args=[ussel_la_courtine.pk]))
    assert response.status_code == 403
    assert not Axe.objects.filter(beneficiaire=ussel_la_courtine).exists()


def test_another_territory_cannot_start_a_plan(client_for, cdp_ussel, le_blanc):
    response = client_for(cdp_ussel).post(reverse("actions:plan-start", args=[le_blanc.pk]))
    assert response.status_code == 404
    assert not Axe.objects.filter(beneficiaire=le_blanc).exists()


@pytest.mark.parametrize("who", ["elu_ussel", "prefecture_19", "partenaire"])
def test_readers_do_not_start_a_plan(request, client_for, who, ussel_la_courtine):
    response = client_for(request.getfixturevalue(who)).get(plan_url(ussel_la_courtine))
    assert response.status_code == 200
    assert "n’est pas encore commencé" in text(response)
    assert "Nouvelle fiche action" not in text(response)
    assert not Axe.objects.filter(beneficiaire=ussel_la_courtine).exists()


@pytest.mark.parametrize("who", ["elu_ussel", "elu_epci", "prefecture_19", "partenaire"])
def test_readers_see_the_plan_without_edit_buttons(request, client_for, who, plan_ussel):
    response = client_for(request.getfixturevalue(who)).get(plan_url(plan_ussel))
    assert response.status_code == 200
    assert response.context["plan"].totals["nb_fiches"] == 4
    assert "Nouvelle fiche action" not in text(response)


@pytest.mark.parametrize("who", ["prefecture_36", "sans_role"])
def test_other_territory_gets_404(request, client_for, who, plan_ussel):
    client = client_for(request.getfixturevalue(who))
    assert client.get(plan_url(plan_ussel)).status_code == 404
    assert client.get(reverse("actions:axes", args=[plan_ussel.pk])).status_code == 404


def test_chef_de_projet_does_not_see_another_plan(client_for, cdp_ussel, le_blanc):
    assert client_for(cdp_ussel).get(plan_url(le_blanc)).status_code == 404


def test_anonymous_is_sent_to_login(client, plan_ussel):
    for url in (reverse("actions:list"), plan_url(plan_ussel)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))


# Plans list ---------------------------------------------------------------------------------


def test_plan_list_shows_each_plan_with_its_totals(client_for, prefecture_19, plan_ussel):
    client = client_for(prefecture_19)
    response = client.get(reverse("actions:list"))
    plans = {b.nom: b for b in response.context["object_list"]}
    assert "Le Blanc" not in plans
    ussel = plans["Ussel – La Courtine"]
    assert (ussel.nb_fiches, ussel.cout, ussel.finance, ussel.reste) == (4, 350000, 280000, 70000)
    assert plans["Bort-les-Orgues – Neuvic"].nb_fiches == 0
    assert "350 000 €" in text(response)


def test_plan_list_filters_by_name_and_departement(client_for, national, plan_ussel):
    client = client_for(national)
    response = client.get(reverse("actions:list"), {"q": "courtine"})
    assert [b.nom for b in response.context["object_list"]] == ["Ussel – La Courtine"]
    response = client.get(reverse("actions:list"), {"departement": "36"})
    noms = [b.nom for b in response.context["object_list"]]
    assert "Le Blanc" in noms and "Ussel – La Courtine" not in noms


def test_plan_list_queries_do_not_grow_with_plans(client_for, national, plan_ussel, le_blanc):
    client = client_for(national)
    client.get(reverse("actions:list"))
    before = count_queries(lambda: client.get(reverse("actions:list")))
    build_plan(le_blanc, 10)
    assert count_queries(lambda: client.get(reverse("actions:list"))) == before


# Axes ---------------------------------------------------------------------------------------


def axes_data(beneficiaire, changes=None, new=()) -> dict:
    """The axes formset as posted, with changes {numero: {field: value}} and new rows."""
    axes = list(beneficiaire.axes.order_by("numero"))
    data = {
        "axes-TOTAL_FORMS": str(len(axes) + len(new)),
        "axes-INITIAL_FORMS": str(len(axes)),
        "axes-MIN_NUM_FORMS": "0",
        "axes-MAX_NUM_FORMS": "1000",
    }
    for i, axe in enumerate(axes):
        row = {"id": axe.pk, "numero": axe.numero, "nom": axe.nom}
        if axe.transversal:
            row["transversal"] = "on"
        row.update((changes or {}).get(axe.numero, {}))
        data.update({f"axes-{i}-{k}": v for k, v in row.items()})
    for j, row in enumerate(new, len(axes)):
        data.update({f"axes-{j}-{k}": v for k, v in row.items()})
    return data


def test_axes_are_renamed_reordered_and_added(client_for, cdp_ussel, plan_ussel):
    url = reverse("actions:axes", args=[plan_ussel.pk])
    data = axes_data(
        plan_ussel,
        {1: {"numero": 2, "nom": "Habitat et logement"}, 2: {"numero": 1}},
        new=[{"numero": 7, "nom": "Tourisme"}],
    )
    response = client_for(cdp_ussel).post(url, data)
    assert response.status_code == 302
    assert [a.nom for a in plan_ussel.axes.order_by("numero")][:2] == [
        "Développement économique et commercial",
        "Habitat et logement",
    ]
    assert plan_ussel.axes.get(numero=7).nom == "Tourisme"
    assert FicheAction.objects.get(reference="1.1").axe.nom == "Habitat et logement"


def test_an_axis_with_fiches_is_not_deleted(client_for, cdp_ussel, plan_ussel):
    url = reverse("actions:axes", args=[plan_ussel.pk])
    response = client_for(cdp_ussel).post(url, axes_data(plan_ussel, {1: {"DELETE": "on"}}))
    assert response.status_code == 200
    assert (
        "L'axe « Habitat » porte 2 fiches action : rattachez-les à un autre axe avant de le "
        "supprimer." in text(response)
    )
    assert plan_ussel.axes.count() == 6
    # An empty axis goes.
    client_for(cdp_ussel).post(url, axes_data(plan_ussel, {3: {"DELETE": "on"}}))
    assert plan_ussel.axes.count() == 5


def test_two_axes_cannot_share_a_number(client_for, cdp_ussel, plan_ussel):
    url = reverse("actions:axes", args=[plan_ussel.pk])
    response = client_for(cdp_ussel).post(url, axes_data(plan_ussel, {2: {"numero": 1}}))
    assert "Deux axes portent le numéro 1" in text(response)
    assert plan_ussel.axes.get(numero=2).nom == "Développement économique et commercial"


@pytest.mark.parametrize("who", ["elu_ussel", "prefecture_19", "partenaire"])
def test_readers_cannot_change_axes(request, client_for, who, plan_ussel):
    client = client_for(request.getfixturevalue(who))
    url = reverse("actions:axes", args=[plan_ussel.pk])
    assert client.get(url).status_code == 403
    response = client.post(url, axes_data(plan_ussel, {1: {"nom": "Autre"}}))
    assert response.status_code == 403
    assert plan_ussel.axes.get(numero=1).nom == "Habitat"


def test_national_staff_edit_any_plan(client_for, national, le_blanc):
    client = client_for(national)
    assert client.post(reverse("actions:plan-start", args=[le_blanc.pk])).status_code == 302
    assert client.get(reverse("actions:axes", args=[le_blanc.pk])).status_code == 200
    assert client.get(plan_url(le_blanc)).context["can_edit"]


def test_the_whole_plan_reads_its_axes_with_their_totals_in_one_query(plan_ussel):
    """``plan_axes_with_totals`` (the plan's page without a search) adds up as
    ``axes_with_totals`` over all the fiches: abandoned fiches apart, empty axes kept."""
    from actions.plan import axes_with_totals, plan_axes_with_totals, totals_by_axe

    fiche(plan_ussel, 3, "3.1", 50000, [("DSIL", 20000, "prevu")], maturite="abandonnee")
    fiches = plan_ussel.fiches.all()
    fields = ["pk", "numero", "nb_fiches", "cout", "finance", "reste", "depassement"]
    fields += ["nb_abandonnees", "cout_abandonne"]

    def figures(axes):
        return [[getattr(axe, name) for name in fields] for axe in axes]

    axes, par_axe = count_queries_of(lambda: plan_axes_with_totals(plan_ussel), 1)
    assert figures(axes) == figures(axes_with_totals(plan_ussel, fiches))
    with_fiches = {pk: row for pk, row in par_axe.items() if row["nb"] or row["nb_abandonnees"]}
    assert with_fiches == totals_by_axe(fiches)
    assert axes[2].nb_abandonnees == 1 and axes[2].cout_abandonne == 50000


def count_queries_of(function, expected: int):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        result = function()
    assert len(queries) == expected
    return result
