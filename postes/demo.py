"""Demonstration posts (issue 10 §6): Haute-Corrèze's two posts and a few Indre cases.

Illustrative people and amounts, credible under the programme's rules: a post filled all
year, one vacant for months, one shared between two beneficiaries with the Anah, one whose
co-financing reaches the 45 000 € cap.
"""

from datetime import date
from decimal import Decimal

from communes.models import EPCI, Beneficiaire, Commune
from pvd.french import de_personne
from pvd.models import Role, User

from .models import (
    ChangementEtat,
    CofinancementAnnee,
    LigneCofinancement,
    Occupation,
    Poste,
    RegleCofinancement,
)
from .regles import seed_regles

POSTES = [
    {
        "beneficiaires": ["Bort-les-Orgues – Neuvic"],
        "employeur": "200066744",
        "intitule": "Chef de projet PVD Bort-les-Orgues – Neuvic",
        "creation": date(2021, 3, 15),
        "personnes": [("Julien", "Mercier", date(2021, 6, 1), None, date(2027, 5, 31))],
        "cofinancement": {
            2025: ("52000", "DS-11824503", {"anct": 24000, "bdt": 15000}),
            2026: ("53000", "DS-19930417", {"anct": 24750, "bdt": 15000}),
        },
    },
    {
        "beneficiaires": ["Ussel – La Courtine"],
        "employeur": "200066744",
        "intitule": "Cheffe de projet PVD Ussel – La Courtine",
        "creation": date(2021, 3, 15),
        "personnes": [("Camille", "Projet", date(2021, 9, 1), None, date(2027, 8, 31))],
        "compte": "cdp-ussel@demo.pvd.fr",
        "cofinancement": {
            2025: ("50000", "DS-11824611", {"anct": 22500, "bdt": 15000}),
            2026: ("51500", "DS-19930502", {"anct": 23625, "bdt": 15000}),
        },
    },
    {
        # Vacant since May: only January to April are eligible in 2026.
        "beneficiaires": ["Le Blanc"],
        "employeur": "243600319",
        "intitule": "Chef de projet PVD Le Blanc",
        "creation": date(2021, 4, 1),
        "personnes": [
            ("Thomas", "Girard", date(2021, 10, 1), date(2026, 4, 30), date(2026, 9, 30)),
        ],
        "motif_fin": "Mutation dans une autre collectivité",
        "cofinancement": {
            2025: ("48000", "DS-11825090", {"anct": 21000, "bdt": 15000}),
            2026: ("48000", "DS-19931187", {"anct": 12000}),
        },
    },
    {
        # One post for two beneficiaries of one EPCI; OPAH-RU in Saint-Gaultier, so the Anah.
        "beneficiaires": ["Argenton-sur-Creuse", "Saint-Gaultier"],
        "employeur": "200068872",
        "intitule": "Cheffe de projet PVD Argenton-sur-Creuse – Saint-Gaultier",
        "creation": date(2021, 5, 3),
        "personnes": [("Inès", "Rolland", date(2022, 2, 1), None, date(2026, 12, 31))],
        "cofinancement": {
            2025: ("64000", "DS-11826342", {"anah": 30000, "anct": 18000}),
            2026: ("64000", "DS-19932214", {"anah": 30000, "anct": 18000}),
        },
    },
    {
        # 75 % of 68 000 € is 51 000 €: the 45 000 € cap applies.
        "beneficiaires": ["La Châtre"],
        "employeur": "243600350",
        "intitule": "Chef de projet PVD La Châtre",
        "creation": date(2021, 2, 8),
        "personnes": [("Nicolas", "Besson", date(2021, 5, 17), None, date(2027, 5, 16))],
        "cofinancement": {
            2025: ("68000", "DS-11823977", {"anct": 30000, "bdt": 15000}),
            2026: ("68000", "DS-19930056", {"anct": 30000, "bdt": 15000}),
        },
    },
    {
        "beneficiaires": ["Déols"],
        "employeur": "243600327",
        "intitule": "Chef de projet PVD Déols",
        "creation": date(2026, 6, 1),
        "publication": date(2026, 10, 5),
        "personnes": [],
        "cofinancement": {},
    },
]


def seed_demo_postes(stdout=None) -> int:
    """Create the demonstration posts that are missing; returns how many were created."""
    seed_regles(RegleCofinancement)
    created = 0
    for row in POSTES:
        beneficiaires = list(Beneficiaire.objects.actifs().filter(nom__in=row["beneficiaires"]))
        if len(beneficiaires) != len(row["beneficiaires"]):
            continue  # not in this database
        if Poste.objects.filter(beneficiaires__in=beneficiaires).exists():
            continue
        _create(row, beneficiaires)
        created += 1
    if stdout is not None and created:
        stdout.write(f"Postes de chef de projet de démonstration : {created}.")
    return created


def _employer_name(siren: str) -> str:
    epci = EPCI.objects.filter(siren=siren).first()
    if epci:
        return epci.nom
    commune = Commune.objects.filter(siren=siren).first()
    return commune.nom if commune else siren


def _create(row: dict, beneficiaires: list[Beneficiaire]) -> Poste:
    poste = Poste.objects.create(
        intitule=row["intitule"],
        employeur_siren=row["employeur"],
        employeur_nom=_employer_name(row["employeur"]),
        date_creation=row["creation"],
    )
    poste.beneficiaires.set(beneficiaires)
    poste.communes.set(Commune.objects.filter(membres__beneficiaire__in=beneficiaires))
    ChangementEtat.objects.create(
        poste=poste,
        nouvel_etat=Poste.Etat.A_CREER,
        date=row["creation"],
        commentaire="Délibération",
    )
    if row.get("publication"):
        poste.change_etat(
            Poste.Etat.EN_RECRUTEMENT,
            by=None,
            date_effet=row["publication"],
            commentaire="Offre publiée",
            date_publication=row["publication"],
            lien_offre="https://choisirleservicepublic.gouv.fr/",
        )
    for prenom, nom, debut, fin, fin_contrat in row["personnes"]:
        email = row.get("compte") or f"{prenom.lower()}.{nom.lower()}@example.fr"
        occupation = Occupation.objects.create(
            poste=poste,
            prenom=prenom,
            nom=nom,
            email=email,
            date_debut=debut,
            date_fin=fin,
            date_fin_contrat=fin_contrat,
            motif_fin=row.get("motif_fin", "") if fin else "",
            role=Role.objects.filter(
                user__in=User.objects.filter(email=email), kind=Role.Kind.CHEF_PROJET
            ).first(),
        )
        poste.change_etat(
            Poste.Etat.POURVU,
            by=None,
            date_effet=debut,
            commentaire=f"Prise de poste {de_personne(prenom)}",
        )
        if fin:
            poste.change_etat(
                Poste.Etat.VACANT,
                by=None,
                date_effet=date.fromordinal(fin.toordinal() + 1),
                commentaire=f"Départ : {occupation.motif_fin}",
                motif_vacance=occupation.motif_fin,
            )
    for annee, (cout, dossier, montants) in row["cofinancement"].items():
        year = CofinancementAnnee.objects.create(
            poste=poste,
            annee=annee,
            cout_charge=Decimal(cout),
            reference_dossier=dossier,
            date_demande=date(annee, 2, 15),
        )
        for financeur, montant in montants.items():
            paid = annee < 2026  # the current year's balance is paid in the next year
            LigneCofinancement.objects.create(
                annee=year,
                financeur=financeur,
                montant_demande=montant,
                montant_notifie=montant,
                date_notification=date(annee, 5, 20),
                montant_verse=montant if paid else Decimal(montant) / 2,
                date_versement=date(annee, 12, 10) if paid else date(annee, 7, 8),
            )
    return poste
