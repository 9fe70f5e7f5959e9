"""What the map shows of the plans d'action: the fiches the reader may read
(``FicheAction.objects.for_user``), placed at their communes (``FicheAction.communes``; a
fiche that names none stands at its beneficiary's active communes).

:func:`fiches` reads them in three queries whatever their number (the fiches, the communes
they name, their beneficiaries' communes); :func:`donnees` is the compact JSON the map's
script draws (each commune's coordinates once, the fiches pointing to them by code), and the
list under the map shows the same fiches with the same filter.
"""

from __future__ import annotations

import json
from collections import defaultdict

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.urls import reverse

from actions.models import Axe, FicheAction, LigneFinancement
from communes.models import Commune, MembreBeneficiaire
from pvd.french import euros

from . import geo
from .filters import FicheCarteFilter

# Coordinates to 4 decimals: about 10 m, more than a commune's point needs.
PRECISION = 4


def filtre_fiches(user, data, filtre: geo.Filtre | None = None) -> FicheCarteFilter:
    """The filter of the fiches on the map, over the reader's fiches in the map's territory
    (``user`` None: the whole country's, precomputed for the readers who see everything,
    carte/precalcul.py)."""
    filtre = filtre or geo.Filtre()
    queryset = FicheAction.objects.all() if user is None else FicheAction.objects.for_user(user)
    if filtre.departement is not None:
        queryset = queryset.filter(beneficiaire__departement=filtre.departement)
    elif filtre.region is not None:
        queryset = queryset.filter(beneficiaire__departement__region=filtre.region)
    return FicheCarteFilter(data or None, queryset=queryset)


def valeurs(filterset: FicheCarteFilter) -> list[tuple[str, str]]:
    """What filters the fiches: the valid filters' values (a filter in error is left out, as
    django-filter does), not the raw query string."""
    filterset.form.is_valid()
    return sorted(
        (name, str(getattr(value, "pk", value)))
        for name, value in getattr(filterset.form, "cleaned_data", {}).items()  # unbound: none
        if value not in (None, "")
    )


def fiches(filterset: FicheCarteFilter) -> tuple[list[dict], dict[str, dict]]:
    """The filtered fiches, each with the codes of the communes it stands at, and those
    communes (name, coordinates). Three queries."""
    queryset = filterset.qs
    rows = queryset.order_by("beneficiaire__nom", "axe__numero", "reference", "pk").values(
        "pk",
        "reference",
        "titre",
        "maturite",
        "avancement",
        "cout_total",
        "beneficiaire_id",
        "beneficiaire__nom",
    )
    rows = list(rows)
    lieux: dict[str, dict] = {}

    def lieu(code: str, nom: str, latitude: float, longitude: float) -> str:
        lieux.setdefault(
            code,
            {
                "nom": nom,
                "latitude": round(latitude, PRECISION),
                "longitude": round(longitude, PRECISION),
            },
        )
        return code

    nommees: dict[int, list[str]] = defaultdict(list)
    through = FicheAction.communes.through.objects.filter(
        ficheaction__in=queryset.values("pk"),
        commune__latitude__isnull=False,
        commune__longitude__isnull=False,
    ).order_by("commune__nom")
    for fiche_id, *commune in through.values_list(
        "ficheaction_id", "commune_id", "commune__nom", "commune__latitude", "commune__longitude"
    ):
        nommees[fiche_id].append(lieu(*commune))
    du_beneficiaire: dict[int, list[str]] = defaultdict(list)
    membres = MembreBeneficiaire.objects.filter(
        actif=True,
        beneficiaire__in=queryset.values("beneficiaire"),
        commune__latitude__isnull=False,
        commune__longitude__isnull=False,
    ).order_by("commune__nom")
    for beneficiaire_id, *commune in membres.values_list(
        "beneficiaire_id", "commune_id", "commune__nom", "commune__latitude", "commune__longitude"
    ):
        du_beneficiaire[beneficiaire_id].append(lieu(*commune))
    maturites = dict(FicheAction.Maturite.choices)
    avancements = dict(FicheAction.Avancement.choices)
    result = []
    for row in rows:
        codes = nommees.get(row["pk"]) or du_beneficiaire.get(row["beneficiaire_id"], [])
        result.append(
            {
                **row,
                "maturite_label": maturites.get(row["maturite"], row["maturite"]),
                "avancement_label": avancements.get(row["avancement"], row["avancement"]),
                "communes": codes,
                "communes_noms": [lieux[code]["nom"] for code in codes],
            }
        )
    used = {code for fiche in result for code in fiche["communes"]}
    return result, {code: lieu for code, lieu in lieux.items() if code in used}


# The models the map's fiches read, with their path to the beneficiary: the data is cached
# under the ``carte-fiches`` versions of the reader's territories, which a write to one of
# them renews (carte/apps.py).
FAMILLE = "carte-fiches"
READS = {
    FicheAction: "beneficiaire",
    FicheAction.communes.through: "ficheaction__beneficiaire",
    Axe: "beneficiaire",
    LigneFinancement: "fiche__beneficiaire",
    MembreBeneficiaire: "beneficiaire",
}


def _placements_sql(queryset) -> tuple[str, list]:
    """The fiches of ``queryset`` grouped by the commune they stand at (those it names with
    coordinates, or else its beneficiary's active ones): per commune, the gaps between its
    fiches' ids in increasing order and the index of each one's maturity, as text built by
    PostgreSQL: a few thousand rows for the 80,000 fiches of the whole country."""
    fiches_sql, params = (
        queryset.order_by().values("pk", "beneficiaire_id", "maturite").query.sql_with_params()
    )
    through = FicheAction.communes.through._meta.db_table
    membres = MembreBeneficiaire._meta.db_table
    communes = Commune._meta.db_table
    maturites = list(FicheAction.Maturite.values)
    index = " ".join("WHEN %s THEN '" + str(n) + "'" for n in range(len(maturites)))
    sql = f"""
        WITH fiches (id, beneficiaire_id, maturite) AS MATERIALIZED ({fiches_sql}),
        nommees AS MATERIALIZED (
            SELECT f.id, f.maturite, t.commune_id AS commune
            FROM fiches f
            JOIN {through} t ON t.ficheaction_id = f.id
            JOIN {communes} c ON c.code = t.commune_id
            WHERE c.latitude IS NOT NULL AND c.longitude IS NOT NULL
        ),
        placees AS MATERIALIZED (
            SELECT id, maturite, commune FROM nommees
            UNION ALL
            SELECT f.id, f.maturite, m.commune_id
            FROM fiches f
            JOIN {membres} m ON m.beneficiaire_id = f.beneficiaire_id AND m.actif
            JOIN {communes} c ON c.code = m.commune_id
            WHERE c.latitude IS NOT NULL AND c.longitude IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM nommees n WHERE n.id = f.id)
        ),
        lieux AS (
            SELECT commune,
                   string_agg(ecart::text, ',' ORDER BY id) AS ecarts,
                   string_agg(CASE maturite {index} ELSE '0' END, '' ORDER BY id) AS maturites
            FROM (
                SELECT commune, id, maturite,
                       id - lag(id, 1, 0::bigint) OVER (PARTITION BY commune ORDER BY id)
                           AS ecart
                FROM placees
            ) ecarts
            GROUP BY commune
        )
        SELECT l.commune, c.nom, c.latitude, c.longitude, l.ecarts, l.maturites,
               (SELECT count(DISTINCT id) FROM placees)
        FROM lieux l JOIN {communes} c ON c.code = l.commune
        ORDER BY c.nom, l.commune
    """
    return sql, [*params, *maturites]


def _placements_portables(filterset: FicheCarteFilter) -> list[tuple]:
    """The rows of :func:`_placements_sql` built in Python from :func:`fiches` (three
    queries), for the databases other than PostgreSQL (SQLite, ``make run``'s default)."""
    rangs = {value: str(n) for n, value in enumerate(FicheAction.Maturite.values)}
    result, lieux = fiches(filterset)
    par_commune: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for fiche in result:
        for code in fiche["communes"]:
            par_commune[code].append((fiche["pk"], rangs.get(fiche["maturite"], "0")))
    total = sum(1 for fiche in result if fiche["communes"])
    rows = []
    for code in sorted(par_commune, key=lambda code: (lieux[code]["nom"], code)):
        placees = sorted(par_commune[code])
        ids = [pk for pk, _ in placees]
        ecarts = ",".join(str(pk - avant) for pk, avant in zip(ids, [0, *ids[:-1]], strict=True))
        lieu = lieux[code]
        rows.append(
            (
                code,
                lieu["nom"],
                lieu["latitude"],
                lieu["longitude"],
                ecarts,
                "".join(rang for _, rang in placees),
                total,
            )
        )
    return rows


def donnees(filterset: FicheCarteFilter) -> bytes:
    """The map's data as JSON, short enough for the whole country's fiches (some 80,000)
    to stay far under 100 kB compressed, computed in one query: ``lieux``, each commune
    that holds fiches once, [latitude, longitude, name, [first id, gap to the next id…],
    "maturity index of each"] (a plan's fiches have close ids: the gaps are small, and
    compress to almost nothing); ``nb_fiches``, how many fiches are placed (a fiche at two
    communes is drawn at each); ``maturites``, the labels the indexes point to. The popup
    fetches the fiche's title and cost when opened (:func:`popup`)."""
    if connection.vendor != "postgresql":
        rows = _placements_portables(filterset)
    else:
        try:
            sql, params = _placements_sql(filterset.qs)
        except EmptyResultSet:  # no fiche can match (no perimeter, a filter in error)
            rows = []
        else:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                rows = cursor.fetchall()
    lieux = [
        f"[{round(latitude, PRECISION)},{round(longitude, PRECISION)},{json.dumps(nom)},"
        f"[{ecarts}],{json.dumps(maturites)}]"
        for _code, nom, latitude, longitude, ecarts, maturites, _total in rows
    ]
    head = {
        "nb_fiches": rows[0][6] if rows else 0,
        "maturites": [label for _, label in FicheAction.Maturite.choices],
        "popup": reverse("carte:fiche", args=[0]),
    }
    return (json.dumps(head)[:-1] + ', "lieux": [' + ",".join(lieux) + "]}").encode()


def popup(fiche: FicheAction) -> dict:
    """What a fiche's popup on the map says: its title, status, cost and link."""
    return {
        "titre": f"{fiche.reference} – {fiche.titre}",
        "maturite": fiche.get_maturite_display(),
        "avancement": fiche.get_avancement_display(),
        "cout": euros(fiche.cout_total) if fiche.cout_total is not None else "non renseigné",
        "url": reverse("actions:fiche", args=[fiche.pk]),
    }
