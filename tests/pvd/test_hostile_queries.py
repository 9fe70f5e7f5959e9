"""Issue 20, item 4: no page answers 500 to a hostile query string. Every list, map and export
URL of the resolver is requested with each query parameter the project reads set to a NUL
byte, a very long value and an unknown value, as a national user and as a préfecture."""

import re
from pathlib import Path

import django_filters
import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from actions.models import ensure_axes

pytestmark = pytest.mark.django_db

# Pages that change something on GET or leave the site: not part of the walk.
SKIPPED = {"account_logout", "portail:readyz", "portail:healthz"}
HOSTILE = {"nul": "ab\x00cd", "long": "9" * 3000, "inconnu": "zz-inconnu-ÿ"}


def url_names(resolver=None, namespace: str = ""):
    """(name, pattern) of every named URL, with its namespace."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from url_names(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}", pattern


def query_parameters() -> set[str]:
    """Every query parameter the project reads: its filters' and its views' own."""
    names = {"page", "format"}
    for filterset in _subclasses(django_filters.FilterSet):
        if filterset.__module__.split(".")[0] not in APPS:
            continue
        for name, field in filterset.base_filters.items():
            names.add(name)
            if isinstance(field, django_filters.OrderingFilter):
                names.add(field.field_name)
    root = Path(settings.BASE_DIR)
    for app in APPS:
        for path in (root / app).glob("**/*.py"):
            names |= set(re.findall(r"GET\.get\(\s*[\"'](\w+)", path.read_text()))
    return names


APPS = ("pvd", "portail", "communes", "conventions", "postes", "actions", "rappels", "tableaux")
APPS += ("carte", "club", "opendata", "api")


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def pages(beneficiaire) -> list[str]:
    """Every GET page without arguments, and the plan, map and export pages with theirs."""
    arguments = {
        "actions:plan": [beneficiaire.pk],
        "actions:fiche-create": [beneficiaire.pk],
        "actions:excel": [beneficiaire.pk],
        "actions:export": [beneficiaire.pk, "csv"],
        "tableaux:ville": [beneficiaire.pk],
        "tableaux:departement": ["19"],
        "tableaux:region": ["75"],
        "tableaux:beneficiaires-export": ["csv"],
        "club:similaires": [beneficiaire.pk],
    }
    urls = []
    for name, pattern in url_names():
        # ProConnect's generic routes take the provider in a parent pattern (and are closed).
        if name in SKIPPED or name.startswith("openid_connect"):
            continue
        if name in arguments:
            urls.append(reverse(name, args=arguments[name]))
        elif not pattern.pattern.regex.groups:
            urls.append(reverse(name))
    # The account pages (allauth's, the sign-in) and the fixed public texts read no filter.
    return sorted({u for u in set(urls) if not u.startswith(ACCOUNT_PAGES)} - PUBLIC_TEXTS)


ACCOUNT_PAGES = ("/accounts/",)
PUBLIC_TEXTS = {"/accessibilite/", "/mentions-legales/", "/donnees-personnelles/", "/plan-du-site/"}


def test_the_walk_covers_the_known_pages_and_parameters(ussel_la_courtine):
    urls = pages(ussel_la_courtine)
    for known in ("/carte/", "/carte/donnees.geojson", "/tableaux/beneficiaires.csv", "/"):
        assert known in urls
    assert {"q", "departement", "region", "axe", "annee", "tri"} <= query_parameters()


@pytest.mark.parametrize("kind", HOSTILE)
def test_no_page_answers_500_to_a_hostile_query(client_for, national, prefecture_19, kind):
    from communes.models import Beneficiaire

    beneficiaire = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    ensure_axes(beneficiaire)
    urls, parameters = pages(beneficiaire), sorted(query_parameters())
    failures = []
    client = client_for(national)
    for url in urls:
        for name in parameters:
            response = client.get(url, {name: HOSTILE[kind]})
            if response.status_code >= 500:
                failures.append(f"national {url}?{name}= → {response.status_code}")
    # The préfecture's pages (its home, its export) with every parameter at once.
    client = client_for(prefecture_19)
    for url in urls:
        response = client.get(url, dict.fromkeys(parameters, HOSTILE[kind]))
        if response.status_code >= 500:
            failures.append(f"préfecture {url}?… → {response.status_code}")
    assert failures == []


@pytest.mark.parametrize(
    "url",
    [
        "/carte/?departement=%00",
        "/carte/?region=%00",
        "/carte/donnees.geojson?departement=%00",
        "/carte/donnees.geojson?region=%00",
        "/tableaux/beneficiaires.csv?q=%00",
        "/?q=%00",
    ],
)
def test_a_nul_byte_in_a_query_is_a_french_400(client_for, prefecture_19, url):
    response = client_for(prefecture_19).get(url)
    assert response.status_code == 400
    assert "caractère invalide" in response.content.decode()


def test_an_unknown_axe_on_the_fiche_creation_page_is_ignored(
    client_for, cdp_ussel, ussel_la_courtine
):
    beneficiaire = ussel_la_courtine
    ensure_axes(beneficiaire)
    response = client_for(cdp_ussel).get(
        reverse("actions:fiche-create", args=[beneficiaire.pk]), {"axe": "abc"}
    )
    assert response.status_code == 200


def test_pages_render_stored_extremes(client_for, national, prefecture_19, cdp_ussel):
    """Values stored at the bounds, or beyond them before the bounds existed (9999, 1900,
    1 MB notes, huge amounts): the pages that show them answer, for every role."""
    from datetime import date
    from decimal import Decimal

    from actions.models import FicheAction, LigneFinancement, PointAvancement
    from communes.models import Beneficiaire
    from postes.models import CofinancementAnnee, Occupation, Poste
    from tests.actions.test_plan import fiche

    beneficiaire = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    ensure_axes(beneficiaire)
    huge = Decimal("999999999999.99")
    extreme = fiche(beneficiaire, 1, "1.1", huge, [("DSIL", huge, "notifie")])
    FicheAction.objects.filter(pk=extreme.pk).update(
        date_debut_prevue=date(1900, 1, 1),
        date_fin_prevue=date(9999, 12, 31),
        date_debut_reelle=date(1950, 1, 1),
        date_fin_reelle=date(2100, 12, 31),
        description="x" * 2**20,
    )
    LigneFinancement.objects.filter(fiche=extreme).update(date_decision=date(9999, 12, 31))
    PointAvancement.objects.create(
        fiche=extreme, date=date(1900, 1, 1), texte="y" * 2**20, auteur=cdp_ussel
    )
    poste = Poste.objects.create(
        employeur_siren="200066744",
        employeur_nom="CC Haute-Corrèze",
        date_creation=date(1950, 1, 1),
        etat=Poste.Etat.POURVU,
    )
    poste.beneficiaires.set([beneficiaire])
    Occupation.objects.create(
        poste=poste,
        prenom="Camille",
        nom="Martin",
        email="camille@example.fr",
        date_debut=date(1950, 1, 1),
        date_fin_contrat=date(9999, 12, 31),
    )
    CofinancementAnnee.objects.create(poste=poste, annee=2040, cout_charge=Decimal("99999999.99"))
    pages = [
        reverse("actions:plan", args=[beneficiaire.pk]),
        reverse("actions:fiche", args=[extreme.pk]),
        reverse("actions:list"),
        reverse("postes:detail", args=[poste.pk]),
        reverse("postes:list"),
        reverse("tableaux:ville", args=[beneficiaire.pk]),
        reverse("actions:export", args=[beneficiaire.pk, "csv"]),
        "/carte/",
        "/",
    ]
    failures = []
    for user in (national, prefecture_19, cdp_ussel):
        client = client_for(user)
        for page in pages:
            status = client.get(page).status_code
            if status >= 500:
                failures.append(f"{user.email} {page} → {status}")
    assert failures == []
