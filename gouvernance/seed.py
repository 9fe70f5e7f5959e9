"""The instances every territory has: one comité de projet per beneficiary with a signed
convention, one CLCT per département (CGCT L1232-2: twice a year at least). Run by the data
migration and by the demo; running it again creates only what is missing.

Takes the models as arguments: the migration passes its historical ones.
"""

from pvd.french import de

# conventions.models.Convention.STATUTS_SIGNES, as stored (the migration's models have no
# class attributes).
SIGNES = ("signee", "modifiee", "echue", "resiliee")
COMITE_PROJET, CLCT = "comite_projet", "clct"


def seed_instances(Instance, Beneficiaire, Departement) -> int:
    """The number of instances created."""
    beneficiaires = (
        Beneficiaire.objects.filter(conventions__statut__in=SIGNES)
        .exclude(instances__type=COMITE_PROJET)
        .distinct()
        .order_by("pk")
    )
    comites = [
        Instance(
            type=COMITE_PROJET,
            nom=f"Comité de projet {de(b.nom)}"[:200],
            beneficiaire=b,
            reunions_par_an=1,
        )
        for b in beneficiaires
    ]
    departements = Departement.objects.exclude(instances__type=CLCT).order_by("code")
    clcts = [
        Instance(
            type=CLCT,
            # No article for a département's name in the data (« de l'Indre », « du Cher »).
            nom=f"Comité local de cohésion territoriale – {d.nom} ({d.code})"[:200],
            departement=d,
            reunions_par_an=2,
            secretariat="Délégué territorial de l'ANCT (préfecture)",
        )
        for d in departements
    ]
    Instance.objects.bulk_create(comites + clcts)
    return len(comites) + len(clcts)
