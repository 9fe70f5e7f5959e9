"""The plan page is cached until the plan changes (actions/plan_cache.py, actions/signals.py)."""

import html
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from actions.models import FicheAction, Financeur, LigneFinancement, ensure_axes
from actions.plan_cache import new_plan_version, plan_version
from tests.conftest import count_queries

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fragment_cache(production_caches):
    """Page fragments cached as in production (tests/conftest.py)."""


def text(response) -> str:
    assert response.status_code == 200
    content = html.unescape(strip_tags(response.content.decode()))
    return " ".join(content.replace("\xa0", " ").replace("\u202f", " ").split())


@pytest.fixture
def fiche(ussel_la_courtine):
    ensure_axes(ussel_la_courtine)
    fiche = FicheAction.objects.create(
        beneficiaire=ussel_la_courtine,
        axe=ussel_la_courtine.axes.get(numero=1),
        reference="1.1",
        titre="Halle couverte",
        cout_total=Decimal("100000"),
    )
    LigneFinancement.objects.create(
        fiche=fiche, financeur=Financeur.objects.get(nom="DSIL"), montant=Decimal("40000")
    )
    return fiche


def plan_url(fiche) -> str:
    return reverse("actions:plan", args=[fiche.beneficiaire_id])


def test_a_second_view_is_served_from_cache_with_fewer_queries(client_for, cdp_ussel, fiche):
    client = client_for(cdp_ussel)
    first = client.get(plan_url(fiche))
    cold = count_queries(lambda: client.get(plan_url(fiche), {"maturite": ""}))
    warm = count_queries(lambda: client.get(plan_url(fiche)))
    assert warm < cold
    assert text(client.get(plan_url(fiche))) == text(first)


def test_every_change_of_the_plan_shows_at_once(client_for, cdp_ussel, fiche):
    client = client_for(cdp_ussel)
    assert "Halle couverte" in text(client.get(plan_url(fiche)))

    fiche.titre = "Halle rénovée"
    fiche.save()
    assert "Halle rénovée" in text(client.get(plan_url(fiche)))

    ligne = fiche.financements.get()
    ligne.montant = Decimal("100000")
    ligne.save()
    assert "0 € reste à financer" in text(client.get(plan_url(fiche)))

    LigneFinancement.objects.create(
        fiche=fiche, financeur=Financeur.objects.get(nom="Région"), montant=Decimal("5000")
    )
    assert "5 000 € de financements au-delà du coût" in text(client.get(plan_url(fiche)))

    axe = fiche.axe
    axe.nom = "Habiter le centre"
    axe.save()
    assert "1. Habiter le centre" in text(client.get(plan_url(fiche)))

    region = Financeur.objects.get(nom="Région")
    region.nom = "Région Nouvelle-Aquitaine"
    region.save()
    assert "Région Nouvelle-Aquitaine" in text(client.get(plan_url(fiche)))

    fiche.delete()
    assert "Halle rénovée" not in text(client.get(plan_url(fiche)))


def test_readers_and_editors_get_their_own_page(client_for, cdp_ussel, elu_ussel, fiche):
    assert "Ajouter une fiche à l’axe 1" in text(client_for(cdp_ussel).get(plan_url(fiche)))
    page = text(client_for(elu_ussel).get(plan_url(fiche)))
    assert "Halle couverte" in page
    assert "Ajouter une fiche" not in page and "Nouvelle fiche action" not in page


def test_a_search_is_not_answered_from_the_cached_page(client_for, cdp_ussel, fiche):
    client = client_for(cdp_ussel)
    client.get(plan_url(fiche))
    page = text(client.get(plan_url(fiche), {"maturite": "livree"}))
    assert "Aucune fiche action ne correspond à votre recherche." in page


def test_the_next_day_the_page_is_rendered_again(client_for, cdp_ussel, fiche, monkeypatch):
    today = timezone.localdate()
    fiche.date_debut_prevue = today - timedelta(days=30)
    fiche.date_fin_prevue = today + timedelta(days=1)
    fiche.save()
    client = client_for(cdp_ussel)
    late = "pvd-timeline__bar--retard"
    assert late not in client.get(plan_url(fiche)).content.decode()

    monkeypatch.setattr(timezone, "localdate", lambda *args: today + timedelta(days=3))
    assert late in client.get(plan_url(fiche)).content.decode()


def test_a_reader_sees_the_axes_an_editor_just_started(
    client_for, elu_ussel, cdp_ussel, ussel_la_courtine
):
    url = reverse("actions:plan", args=[ussel_la_courtine.pk])
    assert "n’est pas encore commencé" in text(client_for(elu_ussel).get(url))
    # The editor starts the plan: the usual axes are created.
    client_for(cdp_ussel).post(reverse("actions:plan-start", args=[ussel_la_courtine.pk]))
    page = text(client_for(elu_ussel).get(url))
    assert "n’est pas encore commencé" not in page
    assert "1. Habitat" in page


def test_a_change_gives_the_plan_a_new_version_again_once_committed(
    fiche, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        fiche.titre = "Halle rénovée"
        fiche.save()
        # A page rendered now may still read the plan as it was before the commit.
        during = plan_version(fiche.beneficiaire_id)
    assert plan_version(fiche.beneficiaire_id) != during


def test_a_new_release_does_not_serve_the_previous_pages(fiche, monkeypatch):
    before = plan_version(fiche.beneficiaire_id)
    monkeypatch.setattr("actions.plan_cache.code_version", lambda: "next-release")
    assert plan_version(fiche.beneficiaire_id) != before


# Fragments cached on their content ---------------------------------------------------------


@pytest.fixture
def renders(monkeypatch):
    """The fragments rendered one by one (not taken from the cache): (template, reference of
    the fiche of a row or a bar; None for the other parts of the page)."""
    import actions.plan_cache

    rendered = []
    get_template = actions.plan_cache.get_template

    def spying_get_template(name):
        template = get_template(name)

        class Spy:
            def render(self, context):
                fiche = context.get("fiche") or context.get("bar", {}).get("fiche")
                rendered.append((name.rsplit("/", 1)[-1], fiche and fiche.reference))
                return template.render(context)

        return Spy()

    monkeypatch.setattr(actions.plan_cache, "get_template", spying_get_template)
    return rendered


def fiche_parts(renders) -> list[tuple[str, str]]:
    """The rows and bars rendered, sorted: (template, reference)."""
    return sorted((name, reference) for name, reference in renders if reference)


def rows(renders) -> list[str]:
    """The references of the fiches whose row in its axis' table was rendered."""
    return [reference for name, reference in renders if name == "fiche_row.html"]


@pytest.fixture
def three_fiches(fiche):
    for reference in ("1.2", "2.1"):
        FicheAction.objects.create(
            beneficiaire=fiche.beneficiaire,
            axe=fiche.beneficiaire.axes.get(numero=int(reference[0])),
            reference=reference,
            titre=f"Fiche {reference}",
        )
    return fiche


def test_a_change_renders_again_only_the_rows_it_changed(
    client_for, cdp_ussel, three_fiches, renders
):
    client = client_for(cdp_ussel)
    client.get(plan_url(three_fiches))
    assert sorted(rows(renders)) == ["1.1", "1.2", "2.1"]

    renders.clear()
    three_fiches.titre = "Halle rénovée"
    three_fiches.save()
    assert "Halle rénovée" in text(client.get(plan_url(three_fiches)))
    assert rows(renders) == ["1.1"]

    # A financing line changes the row's « Financé », not the fiche.
    renders.clear()
    three_fiches.financements.update(montant=Decimal("65432"))
    new_plan_version(three_fiches.beneficiaire_id)
    assert "65 432 €" in text(client.get(plan_url(three_fiches)))
    assert rows(renders) == ["1.1"]


def test_a_row_changed_without_its_modification_date_is_not_served_stale(
    client_for, cdp_ussel, three_fiches
):
    client = client_for(cdp_ussel)
    updated_at = three_fiches.updated_at
    client.get(plan_url(three_fiches))
    # update() leaves updated_at as it was: the row is keyed on what it shows.
    FicheAction.objects.filter(pk=three_fiches.pk).update(
        titre="Halle rénovée", maitre_ouvrage="Syndicat mixte"
    )
    new_plan_version(three_fiches.beneficiaire_id)
    assert FicheAction.objects.get(pk=three_fiches.pk).updated_at == updated_at
    page = text(client.get(plan_url(three_fiches)))
    assert "Halle rénovée Syndicat mixte" in page
    assert "Halle couverte" not in page


def test_a_row_turns_late_the_day_after_its_planned_end(client_for, cdp_ussel, fiche, monkeypatch):
    today = timezone.localdate()
    fiche.date_fin_prevue = today
    fiche.save()
    client = client_for(cdp_ussel)
    badge = ">En retard</span>"
    assert badge not in client.get(plan_url(fiche)).content.decode()
    monkeypatch.setattr(timezone, "localdate", lambda *args: today + timedelta(days=1))
    assert badge in client.get(plan_url(fiche)).content.decode()


def options(response, name: str) -> list[str]:
    page = response.content.decode()
    select = page[page.index(f'name="{name}"') :]
    select = select[: select.index("</select>")]
    return [
        html.unescape(strip_tags(option.partition(">")[2])).strip()
        for option in select.split("<option")[2:]
    ]


def test_the_filter_form_follows_the_axes_and_the_funders(client_for, cdp_ussel, fiche):
    client = client_for(cdp_ussel)
    assert "1. Habitat" in options(client.get(plan_url(fiche)), "axe")

    axe = fiche.axe
    axe.nom = "Habiter le centre"
    axe.save()
    assert "1. Habiter le centre" in options(client.get(plan_url(fiche)), "axe")

    Financeur.objects.create(nom="Fondation du patrimoine", ordre=99)
    assert "Fondation du patrimoine" in options(client.get(plan_url(fiche)), "financeur")

    fiche.beneficiaire.axes.get(numero=6).delete()
    assert "6. Transition écologique" not in options(client.get(plan_url(fiche)), "axe")


def test_a_moved_bar_is_drawn_again(client_for, cdp_ussel, fiche):
    fiche.date_debut_prevue = date(2025, 1, 1)
    fiche.date_fin_prevue = date(2025, 12, 31)
    fiche.save()
    client = client_for(cdp_ussel)
    first = client.get(plan_url(fiche)).content.decode()
    assert "du 01/01/2025 au 31/12/2025" in first

    fiche.date_fin_prevue = date(2025, 6, 30)
    fiche.save()
    page = client.get(plan_url(fiche))
    css = page.context["plan"].timeline["bars"][0]
    content = page.content.decode()
    assert "du 01/01/2025 au 30/06/2025" in html.unescape(strip_tags(content))
    assert f".pvd-timeline__bar--1 {{ left: {css['left']}; width: {css['width']}; }}" in content
    assert css["width"] not in first.split("<style")[1].split("</style>")[0]


def test_a_search_answer_shows_the_rows_of_its_fiches(client_for, cdp_ussel, three_fiches):
    client = client_for(cdp_ussel)
    client.get(plan_url(three_fiches))  # rows cached
    page = text(client.get(plan_url(three_fiches), {"axe": three_fiches.axe_id}))
    assert "Halle couverte" in page and "Fiche 1.2" in page
    assert "Fiche 2.1" not in page


def test_right_after_a_change_the_page_reads_and_writes_the_cache_once_each(
    client_for, cdp_ussel, three_fiches, cache_calls
):
    """The page, then its parts that did not change (rows, filter form, table by funder,
    timeline and its CSS) in one read; the page and its new parts in one write."""
    calls = cache_calls
    client = client_for(cdp_ussel)
    client.get(plan_url(three_fiches))
    calls.clear()
    three_fiches.titre = "Halle rénovée"
    three_fiches.save()
    assert "Halle rénovée" in text(client.get(plan_url(three_fiches)))
    # The page (missing), its parts (the new row missing), the page and the new row stored.
    assert calls == ["get_many", "get_many", "set_many"]

    calls.clear()
    assert "Halle rénovée" in text(client.get(plan_url(three_fiches)))
    assert calls == ["get_many"]


def test_in_one_cache_the_page_is_read_with_its_versions(client_for, cdp_ussel, fiche):
    """In production the fragments share the default cache: the page is read in the same
    round trip as the plan's versions, and served only under the current one."""
    from django.core.cache import caches
    from django.test import override_settings

    one = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(CACHES={**one, "default": {**one["default"], "LOCATION": "one"}}):
        caches["default"].clear()
        client = client_for(cdp_ussel)
        first = client.get(plan_url(fiche))
        cold = count_queries(lambda: client.get(plan_url(fiche), {"maturite": ""}))
        assert count_queries(lambda: client.get(plan_url(fiche))) < cold
        assert text(client.get(plan_url(fiche))) == text(first)

        fiche.titre = "Halle rénovée"
        fiche.save()
        assert "Halle rénovée" in text(client.get(plan_url(fiche)))
        FicheAction.objects.filter(pk=fiche.pk).update(titre="Halle du marché")
        new_plan_version(fiche.beneficiaire_id)
        assert "Halle du marché" in text(client.get(plan_url(fiche)))
        caches["default"].clear()


def test_a_new_title_renders_again_only_its_row_and_its_bar(
    client_for, cdp_ussel, three_fiches, renders
):
    for n, fiche in enumerate(FicheAction.objects.filter(beneficiaire=three_fiches.beneficiaire)):
        fiche.date_debut_prevue = date(2025, 1, 1)
        fiche.date_fin_prevue = date(2025, 3 + n, 1)
        fiche.save()
    client = client_for(cdp_ussel)
    client.get(plan_url(three_fiches))
    assert fiche_parts(renders) == [
        *(("fiche_row.html", ref) for ref in ("1.1", "1.2", "2.1")),
        *(("timeline_bar.html", ref) for ref in ("1.1", "1.2", "2.1")),
    ]

    renders.clear()
    fiche = FicheAction.objects.get(reference="1.2", beneficiaire=three_fiches.beneficiaire)
    fiche.titre = "Kiosque"
    fiche.save()
    page = text(client.get(plan_url(three_fiches)))
    assert "1.2 – Kiosque" in page
    assert fiche_parts(renders) == [("fiche_row.html", "1.2"), ("timeline_bar.html", "1.2")]


def test_a_longer_timeline_moves_the_bars_without_rendering_their_rows_again(
    client_for, cdp_ussel, three_fiches, renders
):
    fiches = list(FicheAction.objects.filter(beneficiaire=three_fiches.beneficiaire))
    for fiche in fiches:
        fiche.date_debut_prevue = date(2025, 1, 1)
        fiche.date_fin_prevue = date(2025, 6, 1)
        fiche.save()
    client = client_for(cdp_ussel)
    before = client.get(plan_url(three_fiches)).context["plan"].timeline["bars"]

    renders.clear()
    fiches[0].date_fin_prevue = date(2027, 6, 1)  # two more years: every bar moves
    fiches[0].save()
    response = client.get(plan_url(three_fiches))
    after = response.context["plan"].timeline["bars"]
    assert [bar["width"] for bar in after] != [bar["width"] for bar in before]
    content = response.content.decode()
    for n, bar in enumerate(after, 1):
        assert (
            f".pvd-timeline__bar--{n} {{ left: {bar['left']}; width: {bar['width']}; }}" in content
        )
    assert [name for name, _ in renders].count("timeline_bar.html") == 1


@pytest.fixture
def cache_calls(monkeypatch):
    """The fragment cache's verbs, in order, as the page calls them."""
    from django.core.cache import caches

    store = caches["template_fragments"]
    calls, inside = [], []

    def counted(verb):
        method = getattr(store, verb)

        def call(*args, **kwargs):
            if inside:  # the memory cache's get_many asks get for each key
                return method(*args, **kwargs)
            calls.append(verb)
            inside.append(verb)
            try:
                return method(*args, **kwargs)
            finally:
                inside.pop()

        return call

    for verb in ("get", "get_many", "set", "set_many"):
        monkeypatch.setattr(store, verb, counted(verb))
    return calls


def test_a_change_the_page_does_not_show_serves_it_again_without_rendering_it(
    client_for, cdp_ussel, three_fiches, renders, cache_calls
):
    """The plan's queries run again (the page cannot know what changed), and the page
    rendered for the same content is served: its parts are neither read nor rendered."""
    client = client_for(cdp_ussel)
    first = text(client.get(plan_url(three_fiches)))
    renders.clear()
    cache_calls.clear()
    three_fiches.description = "Une halle pour le marché du samedi."
    three_fiches.save()
    assert text(client.get(plan_url(three_fiches))) == first
    assert renders == []
    assert cache_calls == ["get_many", "set_many"]  # the page, then the page for its version

    # A change it shows, right after, shows at once.
    three_fiches.titre = "Halle rénovée"
    three_fiches.save()
    assert "Halle rénovée" in text(client.get(plan_url(three_fiches)))
    assert rows(renders) == ["1.1"]


def test_right_after_a_change_the_page_runs_the_plans_three_queries_whatever_its_size(
    client_for, cdp_ussel, three_fiches
):
    """Warm: none of the plan's queries. Right after a change, shown or not: its fiches, its
    axes with their totals, its financing by funder, however many fiches it has."""
    client = client_for(cdp_ussel)
    url = plan_url(three_fiches)

    def after_a_change(field: str, value: str) -> int:
        client.get(url)
        setattr(three_fiches, field, value)
        three_fiches.save()
        return count_queries(lambda: client.get(url))

    client.get(url)
    warm = count_queries(lambda: client.get(url))
    assert after_a_change("titre", "Halle rénovée") == warm + 3
    assert after_a_change("description", "Pour le marché.") == warm + 3
    for n in range(2, 8):
        FicheAction.objects.create(
            beneficiaire=three_fiches.beneficiaire,
            axe=three_fiches.axe,
            reference=f"1.{n + 1}",
            titre=f"Fiche 1.{n + 1}",
            cout_total=Decimal("1000"),
        )
    assert count_queries(lambda: client.get(url)) == warm + 3
    assert after_a_change("titre", "Halle du marché") == warm + 3
    assert after_a_change("description", "Pour le marché du samedi.") == warm + 3
