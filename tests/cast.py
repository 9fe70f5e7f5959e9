"""The tests' own cast: the territories of Indre and Haute-Corrèze, their PVD beneficiaries and
one user per role. Built once per test session (tests/conftest.py, `django_db_setup`) and rebuilt
only after a transactional test flushed the tables; each test runs in its own transaction.

The territories mirror the demo (docs/domaine.md §8) but are the tests' data: changing the demo
fixture must not change what the tests see.
"""

from datetime import date

from auditlog.context import disable_auditlog
from auditlog.models import LogEntry

from actions.catalogue import seed_codes_poste, seed_financeurs
from actions.models import Financeur
from communes.models import (
    EPCI,
    Beneficiaire,
    Commune,
    Departement,
    IdentifiantPVD,
    MembreBeneficiaire,
    Region,
)
from pvd.models import Role, User
from tests.factories import UserFactory, user_with_role

REGIONS = [("24", "Centre-Val de Loire", "234500023"), ("75", "Nouvelle-Aquitaine", "200053759")]
DEPARTEMENTS = [
    ("19", "Corrèze", "75", "221927205"),
    ("23", "Creuse", "75", "222309627"),
    ("36", "Indre", "24", "223600016"),
]
EPCIS = [
    ("200007052", "CC de la Marche Berrichonne"),
    ("243600327", "CA Châteauroux Métropole"),
    ("200068872", "CC Éguzon - Argenton - Vallée de la Creuse"),
    ("243600301", "CC Val de l'Indre - Brenne"),
    ("243600202", "CC Chabris - Pays de Bazelle"),
    ("200035848", "CC du Châtillonnais en Berry"),
    ("243600350", "CC de la Châtre et Sainte-Sévère"),
    ("243600319", "CC Brenne - Val de Creuse"),
    ("243600293", "CC Levroux Boischaut Champagne"),
    ("200018521", "CC du Val de Bouzanne"),
    ("200040558", "CC Écueillé-Valençay"),
    ("200068880", "CC Champagne Boischauts"),
    ("200066744", "CC Haute-Corrèze Communauté"),
]
# code, nom, département, EPCI, SIREN, population, identifiant PVD 2021, identifiant PVD 2023
COMMUNES = [
    ("36001", "Aigurande", "36", "200007052", "213600018", 1428, "pvd-24-36-1", "pvd-24-36-1"),
    ("36005", "Ardentes", "36", "243600327", "213600059", 3860, "pvd-24-36-2", "pvd-24-36-2"),
    ("36006", "Argenton-sur-Creuse", "36", "200068872", "213600067", 4927,
     "pvd-24-36-3", "pvd-24-36-3"),
    ("36031", "Buzançais", "36", "243600301", "213600315", 4505, "pvd-24-36-5", "pvd-24-36-5"),
    ("36034", "Chabris", "36", "243600202", "213600349", 2750, "pvd-24-36-6", "pvd-24-36-6"),
    ("36045", "Châtillon-sur-Indre", "36", "200035848", "213600455", 2567,
     "pvd-24-36-7", "pvd-24-36-7"),
    ("36063", "Déols", "36", "243600327", "213600638", 7513, "pvd-24-36-9", "pvd-24-36-9"),
    ("36046", "La Châtre", "36", "243600350", "213600463", 4109, "pvd-24-36-8", "pvd-24-36-8"),
    ("36018", "Le Blanc", "36", "243600319", "213600182", 6389, "pvd-24-36-4", "pvd-24-36-4"),
    ("36093", "Levroux", "36", "243600293", "200082204", 2947, "pvd-24-36-10", "pvd-24-36-10"),
    ("36141", "Neuvy-Saint-Sépulchre", "36", "200018521", "213601412", 1653,
     "pvd-24-36-11", "pvd-24-36-11"),
    ("36192", "Saint-Gaultier", "36", "200068872", "213601925", 1833,
     "pvd-24-36-12", "pvd-24-36-12"),
    ("36208", "Sainte-Sévère-sur-Indre", "36", "243600350", "213602089", 776,
     "pvd-24-36-13", "pvd-24-36-13"),
    ("36228", "Valençay", "36", "200040558", "213602287", 2367, "pvd-24-36-14", "pvd-24-36-14"),
    ("36230", "Vatan", "36", "200068880", "213602303", 1988, "pvd-24-36-15", "pvd-24-36-15"),
    ("36241", "Villedieu-sur-Indre", "36", "243600301", "213602410", 2697,
     "pvd-24-36-16", "pvd-24-36-16"),
    ("19028", "Bort-les-Orgues", "19", "200066744", "211902804", 2677,
     "pvd-75-19-5", "pvd-75-19-5"),
    ("19148", "Neuvic", "19", "200066744", "211914809", 1648, "pvd-75-19-5", "pvd-75-19-17"),
    ("19275", "Ussel", "19", "200066744", "211927504", 9736, "pvd-75-1923-9", "pvd-75-1923-10"),
    ("23067", "La Courtine", "23", "200066744", "212306708", 769,
     "pvd-75-1923-9", "pvd-75-1923-11"),
]  # fmt: skip
LISTES_PVD = (date(2021, 1, 22), date(2023, 1, 1))
# One beneficiary per Indre commune, and two duos in Haute-Corrèze.
DUOS = {"Bort-les-Orgues – Neuvic": ["19028", "19148"], "Ussel – La Courtine": ["19275", "23067"]}
DECISION_LAUREAT = date(2020, 12, 18)
REFERENCE_LAUREAT = "Liste des lauréats arrêtée par le préfet (publication ANCT du 22/01/2021)"

# email, role kind, perimeter (for tests.factories.user_with_role)
USERS = [
    ("anct@test.pvd.fr", Role.Kind.NATIONAL, {}),
    ("prefecture-36@test.pvd.fr", Role.Kind.PREFECTURE, {"departements": ["36"]}),
    ("prefecture-19@test.pvd.fr", Role.Kind.PREFECTURE, {"departements": ["19"]}),
    ("cdp-ussel@test.pvd.fr", Role.Kind.CHEF_PROJET, {}),
    ("elu-ussel@test.pvd.fr", Role.Kind.ELU, {"communes": ["19275"]}),
    ("president-hcc@test.pvd.fr", Role.Kind.ELU, {"epci_id": "200066744"}),
    ("partenaire@test.pvd.fr", Role.Kind.PARTENAIRE, {"organisation": "Banque des Territoires"}),
]
# The catalogue funders each partner follows (Role.financeurs).
FINANCEURS_DES_PARTENAIRES = {"partenaire@test.pvd.fr": ["Banque des Territoires"]}
SANS_ROLE = "nouveau@test.pvd.fr"


def cast_exists() -> bool:
    return User.objects.filter(email=SANS_ROLE).exists()


def build_cast() -> None:
    # Transactional tests flush every table, the catalogue of the data migrations included.
    seed_financeurs(Financeur)
    seed_codes_poste(Financeur)
    build_territoires()
    build_users()


def clear_cast() -> None:
    """An empty base for the tests of importers and generators; the test's transaction
    brings the cast back when it rolls back."""
    with disable_auditlog():
        User.objects.all().delete()
        Beneficiaire.objects.all().delete()
        IdentifiantPVD.objects.all().delete()
        Commune.objects.all().delete()
        EPCI.objects.all().delete()
        Departement.objects.all().delete()
        Region.objects.all().delete()
    LogEntry.objects.all().delete()


# Where each commune stands on the map (latitude, longitude): the centre of its territory.
COORDONNEES = {
    "36001": (46.45581, 1.84004),
    "36005": (46.73623, 1.82351),
    "36006": (46.57864, 1.49273),
    "36031": (46.88727, 1.41253),
    "36034": (47.25204, 1.66206),
    "36045": (46.99182, 1.17467),
    "36063": (46.84054, 1.70244),
    "36046": (46.5741, 1.9909),
    "36018": (46.63483, 1.1001),
    "36093": (46.9741, 1.59645),
    "36141": (46.59231, 1.81295),
    "36192": (46.64791, 1.43013),
    "36208": (46.50427, 2.06812),
    "36228": (47.15583, 1.5584),
    "36230": (47.05376, 1.82557),
    "36241": (46.845, 1.51617),
    "19028": (45.3934, 2.49174),
    "19148": (45.37134, 2.2586),
    "19275": (45.54984, 2.30467),
    "23067": (45.72996, 2.24381),
}


def build_territoires() -> None:
    # One save() per row, as an import does: computed fields and the audit log follow.
    for code, nom, siren in REGIONS:
        Region.objects.create(code=code, nom=nom, siren=siren)
    for code, nom, region, siren in DEPARTEMENTS:
        Departement.objects.create(code=code, nom=nom, region_id=region, siren=siren)
    for siren, nom in EPCIS:
        EPCI.objects.create(siren=siren, nom=nom, nature=EPCI.nature_from_name(nom))
    for code, nom, departement, epci, siren, population, *ids_pvd in COMMUNES:
        Commune.objects.create(
            code=code,
            nom=nom,
            departement_id=departement,
            epci_id=epci,
            siren=siren,
            population=population,
            latitude=COORDONNEES.get(code, (None, None))[0],
            longitude=COORDONNEES.get(code, (None, None))[1],
        )
        for date_liste, id_pvd in zip(LISTES_PVD, ids_pvd, strict=True):
            IdentifiantPVD.objects.create(commune_id=code, date_liste=date_liste, id_pvd=id_pvd)
    in_duo = {code for codes in DUOS.values() for code in codes}
    groups = {row[1]: [row[0]] for row in COMMUNES if row[0] not in in_duo} | DUOS
    for nom, codes in groups.items():
        build_laureat(nom, codes)


def build_laureat(nom: str, codes: list[str]) -> Beneficiaire:
    """A beneficiary as the ANCT list brings it in: proposed, then laureate."""
    communes = list(Commune.objects.filter(code__in=codes))
    main = max(communes, key=lambda c: c.population or 0)
    beneficiaire = Beneficiaire.objects.create(
        nom=nom,
        epci_id=main.epci_id,
        departement_id=main.departement_id,
        statut=Beneficiaire.Statut.CANDIDAT,
    )
    for commune in communes:
        MembreBeneficiaire.objects.create(beneficiaire=beneficiaire, commune=commune)
    beneficiaire.enregistrer_proposition(by=None, date=DECISION_LAUREAT)
    beneficiaire.change_statut(
        Beneficiaire.Statut.LAUREAT,
        by=None,
        date_decision=DECISION_LAUREAT,
        reference=REFERENCE_LAUREAT,
    )
    return beneficiaire


def build_users() -> None:
    for email, kind, perimeter in USERS:
        user_with_role(email, kind, **perimeter)
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    Role.objects.get(user__email="cdp-ussel@test.pvd.fr").beneficiaires.set([ussel])
    for email, noms in FINANCEURS_DES_PARTENAIRES.items():
        Role.objects.get(user__email=email, kind=Role.Kind.PARTENAIRE).financeurs.set(
            Financeur.objects.filter(nom__in=noms)
        )
    UserFactory(email=SANS_ROLE)
