"""What the map shows: the PVD communes of a user's perimeter, and their départements.

One place for the map's read-model of communes, used by the GeoJSON view and the list under
the map (``templates/carte/includes/carte.html``):

- :func:`points` — the active PVD communes that have coordinates, within the user's
  perimeter (``commune_q``: another territory's communes never appear), each with its
  beneficiary and the state of the beneficiary's convention-cadre, in ONE query;
- :func:`departements` — per département, the centroid of those communes, the number of
  beneficiaries and of those whose convention-cadre is signed, in ONE query (GROUP BY),
  served in the GeoJSON for its readers. The page draws the départements with their real
  shapes instead (``carte/choroplethe.py``). A beneficiary whose communes lie in two
  départements (Ussel – La Courtine) counts in each: these are per-département figures,
  not national totals.

Keyboard and screen-reader users get the same information from the tables under the map.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db.models import Avg, Count, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse

from communes.models import Beneficiaire, Departement, MembreBeneficiaire, Region
from conventions.models import STATUTS_EN_VIGUEUR, Convention
from pvd import policy

# The state of a beneficiary's convention-cadre, as the map colours it.
SIGNEE = "signee"
EN_COURS = "en_cours"
AUCUNE = "aucune"
TERMINEE = "terminee"
ETATS = {
    SIGNEE: "Convention-cadre signée",
    EN_COURS: "Convention-cadre en préparation",
    AUCUNE: "Pas de convention-cadre",
    TERMINEE: "Convention-cadre échue ou résiliée",
}

# Share of beneficiaries with a signed convention-cadre: the classes of the départements.
CLASSES = (
    (0.75, "fort", "75 % ou plus"),
    (0.5, "moyen", "de 50 à 75 %"),
    (0.25, "faible", "de 25 à 50 %"),
    (0.0, "tres-faible", "moins de 25 %"),
)


# What the map opens on, and the overseas départements a button away: (code, name,
# "south,west,north,east"). Metropolitan France first: the national view would otherwise
# zoom out to the whole world to hold the overseas points.
VUES = (
    ("metropole", "France métropolitaine", "41.3,-5.2,51.1,9.6"),
    ("971", "Guadeloupe", "15.8,-61.85,16.55,-60.95"),
    ("972", "Martinique", "14.38,-61.25,14.9,-60.8"),
    ("973", "Guyane", "2.1,-54.6,5.8,-51.6"),
    ("974", "La Réunion", "-21.4,55.2,-20.85,55.85"),
    ("976", "Mayotte", "-13.05,44.95,-12.6,45.3"),
)


def etat(statut: str | None) -> str:
    """The map's state of a convention-cadre of that status (None: no convention-cadre)."""
    if statut is None:
        return AUCUNE
    if statut in STATUTS_EN_VIGUEUR:
        return SIGNEE
    if statut in Convention.STATUTS_MODIFIABLES:
        return EN_COURS
    return TERMINEE


def classe(part: float) -> tuple[str, str]:
    for seuil, key, label in CLASSES:
        if part >= seuil:
            return key, label
    return CLASSES[-1][1], CLASSES[-1][2]


@dataclass(frozen=True)
class Filtre:
    """The territory the map is narrowed to (already checked against the perimeter)."""

    departement: Departement | None = None
    region: Region | None = None

    def querystring(self) -> str:
        if self.departement is not None:
            return f"departement={self.departement.code}"
        if self.region is not None:
            return f"region={self.region.code}"
        return ""


def membres(user, filtre: Filtre = Filtre()) -> QuerySet:
    """Active memberships of active beneficiaries, on the map, within the perimeter (``user``
    None: the whole country, the map's data precomputed for the readers who see everything,
    carte/precalcul.py)."""
    cadre = (
        Convention.objects.filter(beneficiaire=OuterRef("beneficiaire"), type=Convention.Type.CADRE)
        .order_by("-pk")
        .values("statut")[:1]
    )
    queryset = MembreBeneficiaire.objects.filter(
        actif=True,
        beneficiaire__statut__in=Beneficiaire.STATUTS_ACTIFS,
        commune__latitude__isnull=False,
        commune__longitude__isnull=False,
    ).annotate(cadre=Subquery(cadre))
    if user is not None:
        queryset = queryset.filter(policy.communes_q(user, "commune"))
    if filtre.departement is not None:
        queryset = queryset.filter(commune__departement=filtre.departement)
    elif filtre.region is not None:
        queryset = queryset.filter(commune__departement__region=filtre.region)
    return queryset


def points(user, filtre: Filtre = Filtre()) -> list[dict]:
    """The PVD communes on the map, ordered by département then name (one query)."""
    rows = (
        membres(user, filtre)
        .order_by("commune__departement_id", "commune__nom", "commune_id")
        .values(
            "commune_id",
            "commune__nom",
            "commune__latitude",
            "commune__longitude",
            "commune__departement_id",
            "commune__departement__region_id",
            "beneficiaire_id",
            "beneficiaire__nom",
            "cadre",
        )
    )
    # One reverse() for all: the URL differs by the beneficiary's id only.
    url = reverse("communes:beneficiaire-detail", args=[0]).replace("/0/", "/{}/")
    result = []
    for row in rows:
        key = etat(row["cadre"])
        result.append(
            {
                "code": row["commune_id"],
                "nom": row["commune__nom"],
                "latitude": row["commune__latitude"],
                "longitude": row["commune__longitude"],
                "departement": row["commune__departement_id"],
                "region": row["commune__departement__region_id"],
                "beneficiaire": row["beneficiaire__nom"],
                "url": url.format(row["beneficiaire_id"]),
                "etat": key,
                "etat_label": ETATS[key],
            }
        )
    return result


def departements(user, filtre: Filtre = Filtre()) -> list[dict]:
    """Per département: centroid of its PVD communes, beneficiaries, signed ones (one query)."""
    rows = (
        membres(user, filtre)
        .values(
            "commune__departement_id",
            "commune__departement__nom",
            "commune__departement__region_id",
        )
        .annotate(
            latitude=Avg("commune__latitude"),
            longitude=Avg("commune__longitude"),
            communes=Count("pk"),
            beneficiaires=Count("beneficiaire", distinct=True),
            signees=Count("beneficiaire", distinct=True, filter=Q(cadre__in=STATUTS_EN_VIGUEUR)),
        )
        .order_by("commune__departement_id")
    )
    result = []
    for row in rows:
        part = row["signees"] / row["beneficiaires"] if row["beneficiaires"] else 0.0
        key, label = classe(part)
        result.append(
            {
                "code": row["commune__departement_id"],
                "nom": row["commune__departement__nom"],
                "region": row["commune__departement__region_id"],
                "latitude": round(row["latitude"], 5),
                "longitude": round(row["longitude"], 5),
                "communes": row["communes"],
                "beneficiaires": row["beneficiaires"],
                "signees": row["signees"],
                "part": round(100 * part),
                "classe": key,
                "classe_label": label,
            }
        )
    return result


# What the map's script reads of a commune, and the number of decimals of its coordinates
# (about 10 m): the labels, the département and the rest stay in the page's tables.
PROPRIETES_COMMUNE = ("code", "nom", "beneficiaire", "url", "etat")
PRECISION = 4


DEPARTEMENT_KEYS = ("code", "nom", "communes", "beneficiaires", "signees", "part", "classe")


def _feature(item: dict, couche: str, keys) -> dict:
    longitude, latitude = (round(item[k], PRECISION) for k in ("longitude", "latitude"))
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [longitude, latitude]},
        "properties": {"couche": couche, **{k: item[k] for k in keys}},
    }


def features(user, filtre: Filtre = Filtre()) -> list[tuple[str, str, dict]]:
    """The GeoJSON's features, départements then communes, each with the codes of its
    département and région (to pick a territory's out of the whole country's). Two queries."""
    return [
        (d["code"], d["region"], _feature(d, "departement", DEPARTEMENT_KEYS))
        for d in departements(user, filtre)
    ] + [
        (p["departement"], p["region"], _feature(p, "commune", PROPRIETES_COMMUNE))
        for p in points(user, filtre)
    ]


def collection(chosen: list[dict]) -> bytes:
    """A FeatureCollection as compact JSON (no needless spaces)."""
    return json.dumps(
        {"type": "FeatureCollection", "features": chosen}, separators=(",", ":")
    ).encode()


def geojson(user, filtre: Filtre = Filtre()) -> dict:
    """One FeatureCollection: communes (``couche: commune``) and départements."""
    return {"type": "FeatureCollection", "features": [f for *_, f in features(user, filtre)]}


def geojson_bytes(user, filtre: Filtre = Filtre()) -> bytes:
    """The GeoJSON as compact JSON (no needless spaces)."""
    return collection([f for *_, f in features(user, filtre)])
