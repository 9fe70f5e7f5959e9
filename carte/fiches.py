"""What the map shows of the plans d'action: the fiches the reader may read
(``FicheAction.objects.for_user``), placed at their communes (``FicheAction.communes``; a
fiche that names none stands at its beneficiary's active communes).

:func:`fiches` reads them in three queries whatever their number (the fiches, the communes
they name, their beneficiaries' communes); :func:`donnees` is the compact JSON the map's
script draws (each commune's coordinates once, the fiches pointing to them by code), and the
list under the map shows the same fiches with the same filter.
"""

from __future__ import annotations

from collections import defaultdict

from django.urls import reverse

from actions.models import FicheAction
from communes.models import MembreBeneficiaire
from pvd.french import euros

from . import geo
from .filters import FicheCarteFilter

# Coordinates to 4 decimals: about 10 m, more than a commune's point needs.
PRECISION = 4


def filtre_fiches(user, data, filtre: geo.Filtre | None = None) -> FicheCarteFilter:
    """The filter of the fiches on the map, over the reader's fiches in the map's territory."""
    filtre = filtre or geo.Filtre()
    queryset = FicheAction.objects.for_user(user)
    if filtre.departement is not None:
        queryset = queryset.filter(beneficiaire__departement=filtre.departement)
    elif filtre.region is not None:
        queryset = queryset.filter(beneficiaire__departement__region=filtre.region)
    return FicheCarteFilter(data or None, queryset=queryset)


def fiches(filterset: FicheCarteFilter) -> tuple[list[dict], dict[str, dict]]:
    """The filtered fiches, each with the codes of the communes it stands at, and those
    communes (name, coordinates). Three queries."""
    queryset = filterset.qs
    rows = list(
        queryset.order_by("beneficiaire__nom", "axe__numero", "reference", "pk").values(
            "pk",
            "reference",
            "titre",
            "maturite",
            "avancement",
            "cout_total",
            "beneficiaire_id",
            "beneficiaire__nom",
        )
    )
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


def donnees(filterset: FicheCarteFilter) -> dict:
    """The map's data, short enough for the whole country's fiches (some 80,000) to stay
    under 1 MB compressed: ``lieux``, each commune once ([latitude, longitude, name]), and
    ``fiches``, [id, index of its maturity in ``maturites``, index of each of its communes in
    ``lieux``…], ordered by id (close numbers compress well). The popup fetches the fiche's
    title and cost when opened (:func:`popup`)."""
    rows, lieux = fiches(filterset)
    index = {code: n for n, code in enumerate(lieux)}
    maturites = list(FicheAction.Maturite.values)
    return {
        "lieux": [[lieu["latitude"], lieu["longitude"], lieu["nom"]] for lieu in lieux.values()],
        "fiches": [
            [row["pk"], maturites.index(row["maturite"]), *(index[c] for c in row["communes"])]
            for row in sorted(rows, key=lambda row: row["pk"])
            if row["communes"]
        ],
        "maturites": [label for _, label in FicheAction.Maturite.choices],
        "popup": reverse("carte:fiche", args=[0]),
    }


def popup(fiche: FicheAction) -> dict:
    """What a fiche's popup on the map says: its title, status, cost and link."""
    return {
        "titre": f"{fiche.reference} – {fiche.titre}",
        "maturite": fiche.get_maturite_display(),
        "avancement": fiche.get_avancement_display(),
        "cout": euros(fiche.cout_total) if fiche.cout_total is not None else "non renseigné",
        "url": reverse("actions:fiche", args=[fiche.pk]),
    }
