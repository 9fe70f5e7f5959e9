"""The fiches action on the map (carte/fiches.py): placed at their communes, filtered, within
the reader's perimeter, the same in the list under the map, and a short payload."""

import gzip
import json

import pytest
from faker import Faker

from actions.models import FicheAction, ensure_axes
from communes.models import Beneficiaire, MembreBeneficiaire
from tests.actions.test_plan import fiche
from tests.conftest import count_queries
from tests.factories import CommuneFactory, DepartementFactory

pytestmark = pytest.mark.django_db

DONNEES = "/carte/fiches.json"
# The whole country as the national bench builds it: 1,650 beneficiaries × 50 fiches.
FICHES_NATIONALES = 82_500


@pytest.fixture
def fiches_ussel(ussel_la_courtine):
    """4.1 names Ussel; 1.1 names no commune (it stands at both of the duo's communes)."""
    ensure_axes(ussel_la_courtine)
    halle = fiche(
        ussel_la_courtine,
        4,
        "4.1",
        100000,
        [("DSIL", 40000, "notifie")],
        titre="Rénovation de la halle",
        maturite=FicheAction.Maturite.ENGAGEE,
        avancement=FicheAction.Avancement.DEMARRAGE,
    )
    halle.communes.set(["19275"])
    logements = fiche(ussel_la_courtine, 1, "1.1", None, titre="Logements vacants", maturite="idee")
    return halle, logements


@pytest.fixture
def fiche_le_blanc(le_blanc):
    ensure_axes(le_blanc)
    return fiche(le_blanc, 2, "2.1", 30000, titre="Commerces du centre", maturite="prete")


def donnees(client, query: str = "") -> dict:
    response = client.get(DONNEES + query)
    assert response.status_code == 200
    return response.json()


def decode(data: dict) -> dict[int, tuple[str, list[str]]]:
    """What the map's script reads (static/js/carte.js): each fiche's id, its maturity and
    the names of the communes it stands at (the ids of a commune's fiches are given as the
    gaps between them, their maturities as one digit each)."""
    fiches: dict[int, tuple[str, list[str]]] = {}
    for _latitude, _longitude, nom, ecarts, maturites in data["lieux"]:
        assert len(ecarts) == len(maturites)
        pk = 0
        for ecart, maturite in zip(ecarts, maturites, strict=True):
            pk += ecart
            fiches.setdefault(pk, (data["maturites"][int(maturite)], []))[1].append(nom)
    assert data["nb_fiches"] == len(fiches)
    return fiches


def placees(data: dict) -> dict[str, list[str]]:
    """Each fiche's « référence – titre » and the names of the communes it stands at."""
    decoded = decode(data)
    fiches = FicheAction.objects.in_bulk(list(decoded))
    return {
        f"{fiches[pk].reference} – {fiches[pk].titre}": sorted(noms)
        for pk, (_, noms) in decoded.items()
    }


def test_fiches_stand_at_their_communes_or_their_beneficiarys(client_for, elu_ussel, fiches_ussel):
    data = donnees(client_for(elu_ussel))
    assert placees(data) == {
        "4.1 – Rénovation de la halle": ["Ussel"],
        "1.1 – Logements vacants": ["La Courtine", "Ussel"],
    }
    assert [45.5498, 2.3047, "Ussel"] in [lieu[:3] for lieu in data["lieux"]]


def test_popup_has_title_status_cost_and_link(client_for, elu_ussel, fiches_ussel):
    halle, logements = fiches_ussel
    client = client_for(elu_ussel)
    data = donnees(client)
    assert decode(data)[halle.pk][0] == "Engagée"
    popup = client.get(data["popup"].replace("/0.json", f"/{halle.pk}.json")).json()
    cout = popup.pop("cout")
    assert popup == {
        "titre": "4.1 – Rénovation de la halle",
        "maturite": "Engagée",
        "avancement": "Démarrage",
        "url": f"/actions/fiches/{halle.pk}/",
    }
    assert " ".join(cout.replace("\u202f", " ").split()) == "100 000 €"
    assert client.get(f"/carte/fiches/{logements.pk}.json").json()["cout"] == "non renseigné"


def test_popup_of_another_territorys_fiche_is_404(client_for, prefecture_36, fiches_ussel):
    response = client_for(prefecture_36).get(f"/carte/fiches/{fiches_ussel[0].pk}.json")
    assert response.status_code == 404


def test_only_the_readers_perimeter(
    client_for, prefecture_36, elu_ussel, sans_role, fiches_ussel, fiche_le_blanc
):
    assert set(placees(donnees(client_for(prefecture_36)))) == {"2.1 – Commerces du centre"}
    assert "2.1 – Commerces du centre" not in placees(donnees(client_for(elu_ussel)))
    assert donnees(client_for(sans_role))["lieux"] == []


def test_map_data_needs_a_login(client):
    response = client.get(DONNEES)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("?axe=4", {"4.1 – Rénovation de la halle"}),
        ("?maturite=idee", {"1.1 – Logements vacants"}),
        ("?avancement=demarrage", {"4.1 – Rénovation de la halle"}),
        ("?financeur={dsil}", {"4.1 – Rénovation de la halle"}),
        ("?departement=36", {"2.1 – Commerces du centre"}),
        ("?axe=2&maturite=idee", set()),
    ],
)
def test_filters_by_axis_maturity_progress_funder_and_territory(
    client_for, national, fiches_ussel, fiche_le_blanc, query, expected
):
    dsil = fiches_ussel[0].financements.get().financeur_id
    client = client_for(national)
    query = query.format(dsil=dsil)
    assert set(placees(donnees(client, query))) == expected
    # The list under the map shows the same fiches with the same filter.
    html = client.get("/carte/" + query).content.decode()
    for title in ["4.1 – Rénovation de la halle", "1.1 – Logements vacants", "2.1 – Commerces"]:
        assert (f"{title}" in html) == any(t.startswith(title) for t in expected), title
    if query != "?departement=36":
        assert f'data-fiches-url="/carte/fiches.json{query.replace("&", "&amp;")}"' in html


def test_bad_filter_is_told_in_french_and_shows_nothing_else(client_for, national, fiches_ussel):
    response = client_for(national).get("/carte/?maturite=finie")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sélectionnez un choix valide" in html
    assert 'class="fr-error-text"' in html


def _grow(n: int, faker: Faker) -> None:
    """n more beneficiaries, each at a new commune with five fiches of realistic titles."""
    departement = DepartementFactory(code="87", nom="Haute-Vienne", region_id="75")
    for i in range(n):
        commune = CommuneFactory(
            code=f"87{i:03d}", departement=departement, latitude=45.8 + i / 997, longitude=1.2
        )
        beneficiaire = Beneficiaire.objects.create(
            nom=f"Bénéficiaire {i}", departement=departement, statut="laureat"
        )
        MembreBeneficiaire.objects.create(beneficiaire=beneficiaire, commune=commune)
        ensure_axes(beneficiaire)
        for j in range(5):
            fiche(
                beneficiaire,
                j % 6 + 1,
                f"{j % 6 + 1}.{j + 1}",
                faker.random_int(10_000, 5_000_000),
                titre=faker.sentence(nb_words=8)[:80],
                maturite=faker.random_element(FicheAction.Maturite.values),
            )


def test_queries_fixed_whatever_the_number_of_fiches(client_for, national, fiches_ussel):
    faker = Faker("fr_FR")
    faker.seed_instance(25)
    client = client_for(national)
    client.get(DONNEES)  # warm caches (session, perimeter)
    small = count_queries(lambda: client.get(DONNEES))
    _grow(40, faker)
    large = count_queries(lambda: client.get(DONNEES))
    assert small == large <= 6
    assert donnees(client)["nb_fiches"] == 2 + 200


def _plans(beneficiaires: int, fiches: int, faker: Faker) -> None:
    """Plans as the bench builds them for the whole country (a plan's fiches created
    together, as the Excel import and the bench generator do), each at its own commune."""
    departement = DepartementFactory(code="87", nom="Haute-Vienne", region_id="75")
    maturites = FicheAction.Maturite.values
    for i in range(beneficiaires):
        commune = CommuneFactory(
            code=f"87{i:03d}",
            nom=faker.city(),
            departement=departement,
            latitude=faker.pyfloat(min_value=42, max_value=51),
            longitude=faker.pyfloat(min_value=-4, max_value=8),
        )
        beneficiaire = Beneficiaire.objects.create(
            nom=f"Bénéficiaire {i}", departement=departement, statut="laureat"
        )
        MembreBeneficiaire.objects.create(beneficiaire=beneficiaire, commune=commune)
        ensure_axes(beneficiaire)
        axe = beneficiaire.axes.get(numero=1)
        created = FicheAction.objects.bulk_create(
            FicheAction(
                beneficiaire=beneficiaire,
                axe=axe,
                reference=f"1.{j + 1}",
                titre=f"Fiche {j}",
                maturite=faker.random_element(maturites),
            )
            for j in range(fiches)
        )
        FicheAction.communes.through.objects.bulk_create(
            FicheAction.communes.through(ficheaction_id=f.pk, commune_id=commune.code)
            for f in created
        )


def test_whole_country_under_100_kilobytes_on_the_wire(client_for, national):
    """Compressed as served, for a sample of plans shaped as the country's (50 fiches at
    each commune), scaled to its 82,500 fiches."""
    faker = Faker("fr_FR")
    faker.seed_instance(26)
    _plans(40, 50, faker)
    client = client_for(national)
    response = client.get(DONNEES, HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Encoding"] == "gzip"
    data = json.loads(gzip.decompress(response.content))
    assert data["nb_fiches"] == 2000
    per_fiche = len(response.content) / data["nb_fiches"]
    print(f"Carte, fiches : {per_fiche:.2f} octets compressés par fiche")
    assert per_fiche * FICHES_NATIONALES <= 100 * 1024, per_fiche


def test_map_data_plain_without_gzip_and_304_with_its_etag(client_for, national, fiches_ussel):
    client = client_for(national)
    plain = client.get(DONNEES)
    assert "Content-Encoding" not in plain
    assert plain.json()["nb_fiches"] == 2
    assert "Accept-Encoding" in plain["Vary"] and "Cookie" in plain["Vary"]
    etag = plain["ETag"]
    again = client.get(DONNEES, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    # As a browser sends it back once the body was gzipped by a proxy: weak.
    assert client.get(DONNEES, HTTP_IF_NONE_MATCH=f"W/{etag}").status_code == 304
    assert client.get(DONNEES, HTTP_IF_NONE_MATCH='"autre"').status_code == 200


def test_the_portable_data_is_the_postgresql_data(national, fiches_ussel, fiche_le_blanc):
    """Away from PostgreSQL (SQLite, make run's default) the map's data is built in Python
    from the same fiches: the same bytes as PostgreSQL's one query."""
    from django.db import connection

    from carte import fiches as carte_fiches

    if connection.vendor != "postgresql":
        pytest.skip("the reference is PostgreSQL's query")
    filterset = carte_fiches.filtre_fiches(national, None)
    expected = carte_fiches.donnees(filterset)
    vendor = connection.vendor
    connection.vendor = "sqlite"
    try:
        portable = carte_fiches.donnees(carte_fiches.filtre_fiches(national, None))
    finally:
        connection.vendor = vendor
    assert json.loads(portable)["nb_fiches"] == 3
    assert portable == expected
