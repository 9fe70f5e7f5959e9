"""The programme's national picture: beneficiaries by status and PVD communes, per
département and région (« Synthèse nationale », communes.views.SyntheseView)."""

from collections import Counter, defaultdict
from collections.abc import Callable

from django.db.models import Count, F, QuerySet

from .models import Beneficiaire, Departement, MembreBeneficiaire

COMMUNES_PVD = "nb_communes_pvd"
# Counts of beneficiaries that apps above this one add per département, by name: each gives
# the beneficiaries to count (conventions: the lauréats with no known adhésion date). They
# are registered from the app's AppConfig.ready(): communes imports no app above it.
COMPTES: dict[str, Callable[[], QuerySet]] = {}


def par_region() -> tuple[list[dict], dict[str, int]]:
    """[{région, départements (each with its counts), counts}], and France's counts."""
    # One GROUP BY per figure over the whole table, then merged per département: a
    # subquery per département row would run once per beneficiary joined to it.
    counts: dict[str, Counter] = defaultdict(Counter)
    par_statut = Beneficiaire.objects.values("departement_id", "statut").annotate(n=Count("pk"))
    for row in par_statut.order_by():
        counts[row["departement_id"]][row["statut"]] = row["n"]
    # Communes count where they are (La Courtine in the Creuse), beneficiaries where
    # their dossier is followed (Ussel – La Courtine in the Corrèze).
    communes = (
        MembreBeneficiaire.objects.filter(actif=True)
        .values(departement=F("commune__departement_id"))
        .annotate(n=Count("pk"))
    )
    for row in communes.order_by():
        counts[row["departement"]][COMMUNES_PVD] = row["n"]
    for name, beneficiaires in COMPTES.items():
        par_departement = beneficiaires().order_by().values("departement_id")
        for row in par_departement.annotate(n=Count("pk")):
            counts[row["departement_id"]][name] = row["n"]
    departements = Departement.objects.select_related("region").order_by("region__nom", "code")
    regions: dict[str, dict] = {}
    totals = dict.fromkeys([*Beneficiaire.Statut.values, COMMUNES_PVD, *COMPTES], 0)
    for dep in departements:
        for key in totals:
            setattr(dep, key, counts[dep.pk][key])
        region = regions.setdefault(
            dep.region_id,
            {"region": dep.region, "departements": [], **dict.fromkeys(totals, 0)},
        )
        region["departements"].append(dep)
        for key in totals:
            region[key] += getattr(dep, key)
            totals[key] += getattr(dep, key)
    return list(regions.values()), totals
