"""python manage.py generate_bench_data [--beneficiaires 1650] [--fiches 50] [--lignes 3]

A national-scale set of action plans and chef de projet posts for the benchmarks, never for a
real base. Everything lives in a fake territory that no INSEE code can collide with: région
``XX``, départements ``X01``…``X99``, communes ``X0001``…, EPCI SIRENs ``9999xxxxx``. That is
how ``--reset`` finds it again. Rows are written with ``bulk_create``: no audit trail, no
signals. A base filled before the posts existed gets them on the next run (nothing else
changes): the posts draw from their own random generator, so they are the same either way.
"""

import math
import random
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from auditlog.context import disable_auditlog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from actions.models import (
    AXE_TRANSVERSAL,
    AXES_ORT,
    Axe,
    FicheAction,
    Financeur,
    Indicateur,
    LigneFinancement,
    Mesure,
    PointAvancement,
)
from communes.models import (
    EPCI,
    Beneficiaire,
    Commune,
    DecisionStatut,
    Departement,
    MembreBeneficiaire,
    Region,
    normalize,
)
from postes.models import (
    ChangementEtat,
    CofinancementAnnee,
    LigneCofinancement,
    Occupation,
    Poste,
    RegleCofinancement,
)
from postes.models import Financeur as FinanceurPoste
from postes.plafonds import calculer_plafond, mois_pourvus
from postes.regles import seed_regles
from pvd.cache import data_rewritten
from pvd.french import de

REGION = "XX"
MAX_BENEFICIAIRES = 9999  # commune codes X0001…X9999
DEPARTEMENTS = 99
COMMUNES_PAR_EPCI = 3
CHUNK = 200  # beneficiaries written per round: bounded memory at any scale
BATCH_SIZE = 1000
FIN = date(2028, 12, 31)  # the plans run until the end of the programme

F = FicheAction
MO = F.MaitreOuvrage
M = F.Maturite
A = F.Avancement
S = LigneFinancement.Statut
REALISATION, RESULTAT = Indicateur.Type.REALISATION, Indicateur.Type.RESULTAT


@dataclass(frozen=True)
class Modele:
    """A typical PVD action: where it goes, who owns it, who pays, what it measures."""

    axe: int
    titre: str
    maitre_ouvrage: str
    financeurs: tuple[str, ...]
    indicateur: tuple[str, str, str, int, int]  # type, label, unit, target range
    nature: str = F.Nature.INVESTISSEMENT
    budget_vert: bool = False


RUES = ["de la République", "Nationale", "du Commerce", "des Tanneurs", "Jean-Jaurès", "Gambetta"]
PLACES = ["du Marché", "de l'Église", "de la Mairie", "du Champ de foire", "de la Halle"]
ILOTS = ["Saint-Martin", "des Cordeliers", "du Château", "de la Poste", "des Remparts"]
FRICHES = [
    "de l'ancienne gendarmerie",
    "de l'ancienne laiterie",
    "de la scierie",
    "de la gare de marchandises",
    "de l'ancienne usine textile",
]
RIVIERES = ["de la rivière", "du canal", "de l'ancienne voie ferrée", "des bords de l'étang"]
ECOLES = ["Jules-Ferry", "du Centre", "Jean-Moulin", "des Tilleuls"]
BATIMENTS = ["poste", "gare", "caserne", "perception", "école normale"]

MODELES = [
    Modele(
        1,
        "OPAH-RU du centre-bourg",
        MO.EPCI,
        ("Anah", "Banque des Territoires", "Région", "Autofinancement"),
        (REALISATION, "Logements réhabilités", "logements", 20, 150),
        F.Nature.FONCTIONNEMENT,
    ),
    Modele(
        1,
        "Réhabilitation de l'îlot {ilot}",
        MO.BAILLEUR,
        ("Fonds vert", "Banque des Territoires", "Région", "Autofinancement"),
        (REALISATION, "Logements remis sur le marché", "logements", 4, 30),
    ),
    Modele(
        1,
        "Acquisition-amélioration d'immeubles vacants rue {rue}",
        MO.COMMUNE,
        ("DETR", "Département", "Région", "Autofinancement"),
        (RESULTAT, "Logements vacants remis en location", "logements", 3, 12),
    ),
    Modele(
        2,
        "Rénovation des halles",
        MO.COMMUNE,
        ("DSIL", "DETR", "Région", "Autofinancement"),
        (RESULTAT, "Étals occupés les jours de marché", "étals", 10, 40),
    ),
    Modele(
        2,
        "Étude de revitalisation commerciale du centre-ville",
        MO.COMMUNE,
        ("Banque des Territoires", "Autofinancement"),
        (REALISATION, "Étude remise", "étude", 1, 1),
        F.Nature.FONCTIONNEMENT,
    ),
    Modele(
        2,
        "Création d'un tiers-lieu dans l'ancienne {batiment}",
        MO.COMMUNE,
        ("FNADT", "LEADER", "DETR", "Région", "Autofinancement"),
        (RESULTAT, "Usagers réguliers", "personnes", 30, 200),
    ),
    Modele(
        2,
        "Boutiques à l'essai rue {rue}",
        MO.COMMUNE,
        ("Banque des Territoires", "Région", "Autofinancement"),
        (RESULTAT, "Commerces ouverts", "commerces", 2, 8),
        F.Nature.FONCTIONNEMENT,
    ),
    Modele(
        3,
        "Voie verte {riviere}",
        MO.EPCI,
        ("Fonds vert", "Région", "Département", "FEDER", "Autofinancement"),
        (REALISATION, "Linéaire aménagé", "km", 2, 15),
        budget_vert=True,
    ),
    Modele(
        3,
        "Pôle d'échanges multimodal de la gare",
        MO.COMMUNE,
        ("DSIL", "Région", "FEDER", "Autofinancement"),
        (RESULTAT, "Voyageurs par jour", "voyageurs", 100, 800),
    ),
    Modele(
        3,
        "Schéma des liaisons douces du centre-bourg",
        MO.COMMUNE,
        ("Ademe", "Banque des Territoires", "Autofinancement"),
        (REALISATION, "Itinéraires cyclables créés", "km", 1, 8),
        F.Nature.FONCTIONNEMENT,
        True,
    ),
    Modele(
        4,
        "Aménagement de la place {place}",
        MO.COMMUNE,
        ("DSIL", "DETR", "Département", "Région", "Autofinancement"),
        (REALISATION, "Espace public requalifié", "m²", 1500, 9000),
    ),
    Modele(
        4,
        "Requalification de la friche {friche}",
        MO.COMMUNE,
        ("Fonds vert", "Fonds friches", "Région", "Banque des Territoires", "Autofinancement"),
        (REALISATION, "Surface de friche recyclée", "m²", 2000, 25000),
        budget_vert=True,
    ),
    Modele(
        4,
        "Restauration de l'église et de ses abords",
        MO.COMMUNE,
        ("DRAC", "Département", "Région", "Autofinancement"),
        (REALISATION, "Tranches de travaux achevées", "tranches", 1, 4),
    ),
    Modele(
        4,
        "Signalétique patrimoniale et touristique",
        MO.COMMUNE,
        ("LEADER", "Département", "Autofinancement"),
        (REALISATION, "Panneaux posés", "panneaux", 15, 80),
    ),
    Modele(
        5,
        "Maison de santé pluriprofessionnelle",
        MO.EPCI,
        ("DETR", "DSIL", "Région", "Département", "Autofinancement"),
        (RESULTAT, "Professionnels de santé installés", "professionnels", 5, 15),
    ),
    Modele(
        5,
        "Espace France services",
        MO.EPCI,
        ("FNADT", "DETR", "Autofinancement"),
        (RESULTAT, "Demandes traitées par an", "demandes", 1000, 6000),
    ),
    Modele(
        5,
        "Extension de la médiathèque",
        MO.COMMUNE,
        ("DRAC", "DSIL", "Département", "Autofinancement"),
        (RESULTAT, "Inscrits", "lecteurs", 300, 1500),
    ),
    Modele(
        6,
        "Rénovation énergétique de l'école {ecole}",
        MO.COMMUNE,
        ("Fonds vert", "DSIL", "DETR", "Autofinancement"),
        (RESULTAT, "Baisse de la consommation d'énergie", "%", 30, 60),
        budget_vert=True,
    ),
    Modele(
        6,
        "Rénovation de l'éclairage public (LED)",
        MO.COMMUNE,
        ("DETR", "Fonds vert", "Autofinancement"),
        (REALISATION, "Points lumineux remplacés", "points", 100, 900),
        budget_vert=True,
    ),
    Modele(
        6,
        "Désimperméabilisation et végétalisation de la cour de l'école {ecole}",
        MO.COMMUNE,
        ("Fonds vert", "Autofinancement"),
        (REALISATION, "Surface désimperméabilisée", "m²", 300, 2500),
        budget_vert=True,
    ),
]
LIEUX = {
    "rue": RUES,
    "place": PLACES,
    "ilot": ILOTS,
    "friche": FRICHES,
    "riviere": RIVIERES,
    "ecole": ECOLES,
    "batiment": BATIMENTS,
}
MATURITES = [
    (M.IDEE, 10),
    (M.MATURATION, 20),
    (M.PRETE, 15),
    (M.ENGAGEE, 35),
    (M.LIVREE, 15),
    (M.ABANDONNEE, 5),
]
AVANCEMENTS = {
    M.IDEE: [A.NON_COMMENCEE],
    M.MATURATION: [A.NON_COMMENCEE, A.ETUDE],
    M.PRETE: [A.ETUDE, A.DEMARRAGE],
    M.ENGAGEE: [A.DEMARRAGE, A.OPERATIONNELLE, A.OPERATIONNELLE],
    M.LIVREE: [A.ACHEVEE],
    M.ABANDONNEE: [A.NON_COMMENCEE, A.ETUDE],
}
# Years in which an action of this maturity plausibly starts.
ANNEES_DEBUT = {
    M.IDEE: (2026, 2028),
    M.MATURATION: (2025, 2027),
    M.PRETE: (2025, 2027),
    M.ENGAGEE: (2021, 2025),
    M.LIVREE: (2021, 2024),
    M.ABANDONNEE: (2021, 2024),
}


def departement_code(n: int) -> str:
    return f"X{n:02d}"


def commune_code(n: int) -> str:
    return f"X{n:04d}"


def epci_siren(n: int) -> str:
    return f"9999{n:05d}"


def bench_beneficiaires():
    return Beneficiaire.objects.filter(departement__region_id=REGION)


def bench_postes():
    return Poste.objects.filter(beneficiaires__departement__region_id=REGION).distinct()


def delete_bench_data() -> int:
    """Remove everything this command created; returns the number of beneficiaries."""
    beneficiaires = bench_beneficiaires()
    count = beneficiaires.count()
    # Listed first: the posts are found through the links deleted below.
    postes = Poste.objects.filter(pk__in=list(bench_postes().values_list("pk", flat=True)))
    for queryset in (
        LigneCofinancement.objects.filter(annee__poste__in=postes),
        CofinancementAnnee.objects.filter(poste__in=postes),
        ChangementEtat.objects.filter(poste__in=postes),
        Occupation.objects.filter(poste__in=postes),
        Poste.beneficiaires.through.objects.filter(poste__in=postes),
        Poste.communes.through.objects.filter(poste__in=postes),
        postes,
    ):
        queryset._raw_delete(queryset.db)
    fiches = FicheAction.objects.filter(beneficiaire__in=beneficiaires)
    # The plans hold hundreds of thousands of rows: plain DELETEs, because the audit trail's
    # signals would make Django load (and log) every row first.
    for queryset in (
        Mesure.objects.filter(indicateur__fiche__in=fiches),
        Indicateur.objects.filter(fiche__in=fiches),
        LigneFinancement.objects.filter(fiche__in=fiches),
        PointAvancement.objects.filter(fiche__in=fiches),
        FicheAction.communes.through.objects.filter(ficheaction__in=fiches),
        fiches,
        Axe.objects.filter(beneficiaire__in=beneficiaires),
    ):
        queryset._raw_delete(queryset.db)
    # A few thousand rows left, with relations this command does not know of (roles,
    # conventions): the ORM follows them.
    with disable_auditlog():
        try:
            beneficiaires.delete()
            Commune.objects.filter(departement__region_id=REGION).delete()
            EPCI.objects.filter(siren__startswith="9999").delete()
            Departement.objects.filter(region_id=REGION).delete()
            Region.objects.filter(code=REGION).delete()
        except ProtectedError as exc:
            raise CommandError(
                "Suppression impossible : des données créées ailleurs (conventions, rôles…) "
                f"pointent vers le territoire d'essai. Supprimez-les d'abord. ({exc.args[0]})"
            ) from exc
    return count


def analyze() -> None:
    """Fresh planner statistics: until autovacuum gets to it, PostgreSQL would plan queries
    on these tables as if they were empty (sequential scans of 250,000 lines)."""
    models = [Region, Departement, EPCI, Commune, Beneficiaire, MembreBeneficiaire, DecisionStatut]
    models += [Axe, FicheAction, FicheAction.communes.through, LigneFinancement, Indicateur, Mesure]
    models += [Poste, Poste.beneficiaires.through, Poste.communes.through, Occupation]
    models += [ChangementEtat, CofinancementAnnee, LigneCofinancement]
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


class Generator:
    def __init__(self, rng: random.Random, fiches: int, lignes: int) -> None:
        self.rng = rng
        self.fiches = fiches
        self.lignes = lignes
        self.financeurs = dict(Financeur.objects.filter(actif=True).values_list("nom", "pk"))
        self.counts = {"fiches": 0, "lignes": 0, "indicateurs": 0, "mesures": 0}

    # Territory ---------------------------------------------------------------------------

    def territory(self, n: int) -> list[Commune]:
        Region.objects.bulk_create(
            [Region(code=REGION, nom="Région d'essai (banc de mesure)")], ignore_conflicts=True
        )
        Departement.objects.bulk_create(
            [
                Departement(
                    code=departement_code(d), nom=f"Département d'essai {d:02d}", region_id=REGION
                )
                for d in range(1, DEPARTEMENTS + 1)
            ],
            ignore_conflicts=True,
        )
        epcis = math.ceil(n / COMMUNES_PAR_EPCI)
        EPCI.objects.bulk_create(
            [
                EPCI(siren=epci_siren(e), nom=f"CC d'essai {e:04d}", nature=EPCI.Nature.CC)
                for e in range(1, epcis + 1)
            ],
            ignore_conflicts=True,
            batch_size=BATCH_SIZE,
        )
        communes = []
        for c in range(1, n + 1):
            nom = f"Commune d'essai {c:04d}"
            communes.append(
                Commune(
                    code=commune_code(c),
                    nom=nom,
                    nom_recherche=normalize(nom),
                    departement_id=departement_code((c - 1) % DEPARTEMENTS + 1),
                    epci_id=epci_siren((c - 1) // COMMUNES_PAR_EPCI + 1),
                    population=self.rng.randint(1500, 20000),
                )
            )
        Commune.objects.bulk_create(communes, ignore_conflicts=True, batch_size=BATCH_SIZE)
        return communes

    def beneficiaires(self, communes: list[Commune]) -> list[Beneficiaire]:
        beneficiaires = Beneficiaire.objects.bulk_create(
            [
                Beneficiaire(
                    nom=c.nom,
                    epci_id=c.epci_id,
                    departement_id=c.departement_id,
                    statut=Beneficiaire.Statut.LAUREAT,
                )
                for c in communes
            ],
            batch_size=BATCH_SIZE,
        )
        MembreBeneficiaire.objects.bulk_create(
            [
                MembreBeneficiaire(beneficiaire=b, commune=c)
                for b, c in zip(beneficiaires, communes, strict=True)
            ],
            batch_size=BATCH_SIZE,
        )
        DecisionStatut.objects.bulk_create(
            [
                DecisionStatut(
                    beneficiaire=b,
                    ancien_statut=Beneficiaire.Statut.CANDIDAT,
                    nouveau_statut=Beneficiaire.Statut.LAUREAT,
                    date_decision=date(2020, 12, 18),
                    reference="Banc de mesure (données fictives)",
                )
                for b in beneficiaires
            ],
            batch_size=BATCH_SIZE,
        )
        return beneficiaires

    # Plans ------------------------------------------------------------------------------

    def plans(self, beneficiaires: list[Beneficiaire], communes: list[Commune]) -> None:
        for start in range(0, len(beneficiaires), CHUNK):
            self.plans_chunk(beneficiaires[start : start + CHUNK], communes[start : start + CHUNK])

    def plans_chunk(self, beneficiaires: list[Beneficiaire], communes: list[Commune]) -> None:
        # ensure_axes, in bulk: the five ORT axes and the transversal one.
        noms = [*AXES_ORT, AXE_TRANSVERSAL]
        axes = Axe.objects.bulk_create(
            [
                Axe(beneficiaire=b, numero=i, nom=nom, transversal=nom == AXE_TRANSVERSAL)
                for b in beneficiaires
                for i, nom in enumerate(noms, 1)
            ],
            batch_size=BATCH_SIZE,
        )
        axes_by_plan = {}
        for axe in axes:
            axes_by_plan.setdefault(axe.beneficiaire_id, {})[axe.numero] = axe
        fiches, modeles = [], []
        for beneficiaire, commune in zip(beneficiaires, communes, strict=True):
            numeros: dict[int, int] = {}
            for _ in range(self.fiches):
                modele = self.rng.choice(MODELES)
                numeros[modele.axe] = numeros.get(modele.axe, 0) + 1
                fiches.append(
                    self.fiche(
                        beneficiaire,
                        commune,
                        axes_by_plan[beneficiaire.pk][modele.axe],
                        f"{modele.axe}.{numeros[modele.axe]}",
                        modele,
                    )
                )
                modeles.append(modele)
        fiches = FicheAction.objects.bulk_create(fiches, batch_size=BATCH_SIZE)
        through = FicheAction.communes.through
        through.objects.bulk_create(
            [
                through(ficheaction_id=fiche.pk, commune_id=commune.code)
                for fiche, commune in zip(
                    fiches, (c for c in communes for _ in range(self.fiches)), strict=True
                )
            ],
            batch_size=BATCH_SIZE * 5,
        )
        lignes, indicateurs = [], []
        for fiche, modele in zip(fiches, modeles, strict=True):
            lignes.extend(self.financements(fiche, modele))
            indicateurs.append(self.indicateur(fiche, modele))
        LigneFinancement.objects.bulk_create(lignes, batch_size=BATCH_SIZE * 2)
        indicateurs = Indicateur.objects.bulk_create(indicateurs, batch_size=BATCH_SIZE * 2)
        mesures = [
            Mesure(indicateur=indicateur, date=date(2025, 12, 31), valeur=valeur)
            for indicateur, fiche in zip(indicateurs, fiches, strict=True)
            if (valeur := self.mesure(indicateur, fiche)) is not None
        ]
        Mesure.objects.bulk_create(mesures, batch_size=BATCH_SIZE * 2)
        self.counts["fiches"] += len(fiches)
        self.counts["lignes"] += len(lignes)
        self.counts["indicateurs"] += len(indicateurs)
        self.counts["mesures"] += len(mesures)

    def fiche(
        self, beneficiaire: Beneficiaire, commune: Commune, axe: Axe, reference: str, modele: Modele
    ) -> FicheAction:
        rng = self.rng
        titre = modele.titre.format(**{k: rng.choice(v) for k, v in LIEUX.items()})
        maturite = rng.choices([m for m, _ in MATURITES], [w for _, w in MATURITES])[0]
        avancement = rng.choice(AVANCEMENTS[maturite])
        debut = fin = debut_reel = fin_reel = None
        if maturite != M.IDEE or rng.random() < 0.5:
            debut = date(rng.randint(*ANNEES_DEBUT[maturite]), rng.randint(1, 12), 1)
            fin = min(debut + timedelta(days=30 * rng.randint(6, 42)), FIN)
        if maturite in (M.ENGAGEE, M.LIVREE):
            debut_reel = debut + timedelta(days=rng.randint(0, 120))
        if maturite == M.LIVREE:
            fin_reel = max(fin + timedelta(days=rng.randint(-30, 180)), debut_reel)
        # From 50 k€ to 3 M€, small operations being the most frequent.
        cout = round(math.exp(rng.uniform(math.log(50_000), math.log(3_000_000))), -3)
        if modele.maitre_ouvrage == MO.EPCI:
            maitre_ouvrage = f"CC d'essai {commune.epci_id[4:]}"
        elif modele.maitre_ouvrage == MO.BAILLEUR:
            maitre_ouvrage = "Office public de l'habitat"
        else:
            maitre_ouvrage = f"Commune d'essai {commune.code[1:]}"
        jalons = ""
        if debut and fin:
            jalons = (
                f"Études et consultation : {debut.year} ; travaux : {debut.year + 1}"
                f"–{fin.year} ; livraison : {fin.year}"
            )
        return FicheAction(
            beneficiaire=beneficiaire,
            reference=reference,
            titre=titre,
            axe=axe,
            description=(
                f"{titre} : opération inscrite au plan d'action {de(beneficiaire.nom)}, "
                "au cœur du secteur d'intervention de l'ORT."
            ),
            objectifs="Renforcer l'attractivité du centre-bourg et la qualité de vie.",
            secteur=f"Centre-bourg {de(commune.nom)}",
            maitre_ouvrage_type=modele.maitre_ouvrage,
            maitre_ouvrage=maitre_ouvrage,
            partenaires="ANCT, DDT, Banque des Territoires",
            referent="Chef de projet PVD",
            date_debut_prevue=debut,
            date_fin_prevue=fin,
            date_debut_reelle=debut_reel,
            date_fin_reelle=fin_reel,
            jalons=jalons,
            maturite=maturite,
            avancement=avancement,
            priorite=rng.choice(F.Priorite.values),
            budget_vert=modele.budget_vert,
            cout_total=Decimal(int(cout)),
            nature=modele.nature,
        )

    def financements(self, fiche: FicheAction, modele: Modele) -> list[LigneFinancement]:
        rng = self.rng
        preferes = [nom for nom in modele.financeurs if nom in self.financeurs]
        autres = [nom for nom in self.financeurs if nom not in preferes]
        rng.shuffle(autres)
        noms = (preferes + autres)[: self.lignes]
        if not noms:
            return []
        acquis = fiche.maturite in (M.ENGAGEE, M.LIVREE)
        # Amounts in hundreds of euros, rounded down: their sum never exceeds the cost.
        part = rng.uniform(0.6, 1.0) if acquis else rng.uniform(0.3, 0.9)
        centaines = int(fiche.cout_total * Decimal(str(part))) // 100
        poids = [rng.random() + 0.2 for _ in noms]
        total_poids = sum(poids)
        annee = fiche.date_debut_prevue.year if fiche.date_debut_prevue else 2026
        lignes = []
        for nom, p in zip(noms, poids, strict=True):
            if acquis:
                statut = S.VERSE if fiche.maturite == M.LIVREE else rng.choice([S.NOTIFIE, S.VERSE])
            elif fiche.maturite == M.PRETE:
                statut = rng.choice([S.SOLLICITE, S.NOTIFIE])
            else:
                statut = S.PREVU
            decision = None
            if statut in (S.NOTIFIE, S.VERSE):
                decision = date(max(annee - 1, 2021), rng.randint(1, 12), rng.randint(1, 28))
            lignes.append(
                LigneFinancement(
                    fiche=fiche,
                    financeur_id=self.financeurs[nom],
                    dispositif="" if nom == "Autofinancement" else f"{nom} {annee}",
                    montant=Decimal(int(centaines * p / total_poids) * 100),
                    statut=statut,
                    date_decision=decision,
                )
            )
        return lignes

    def indicateur(self, fiche: FicheAction, modele: Modele) -> Indicateur:
        type_, libelle, unite, bas, haut = modele.indicateur
        return Indicateur(
            fiche=fiche,
            type=type_,
            libelle=libelle,
            unite=unite,
            cible=Decimal(self.rng.randint(bas, haut)),
        )

    def mesure(self, indicateur: Indicateur, fiche: FicheAction) -> Decimal | None:
        if fiche.maturite == M.LIVREE:
            return indicateur.cible
        if fiche.maturite == M.ENGAGEE and fiche.avancement == A.OPERATIONNELLE:
            return (indicateur.cible * Decimal(self.rng.randint(10, 80)) / 100).quantize(
                Decimal("1")
            )
        return None


# Chef de projet posts -----------------------------------------------------------------------

P = Poste.Etat
ETATS_POSTE = [(P.POURVU, 68), (P.VACANT, 12), (P.EN_RECRUTEMENT, 12), (P.A_CREER, 8)]
CONTRATS = [
    (Poste.TypeContrat.CONTRAT_DE_PROJET, 60),
    (Poste.TypeContrat.CDD, 15),
    (Poste.TypeContrat.TITULAIRE, 15),
    (Poste.TypeContrat.DETACHEMENT, 5),
    (Poste.TypeContrat.AUTRE, 5),
]
POSTES_PARTAGES = 12  # one EPCI in this many has one post for all its beneficiaries
PRENOMS = ["Camille", "Julien", "Inès", "Thomas", "Léa", "Nicolas", "Sarah", "Antoine", "Manon"]
NOMS_FAMILLE = ["Martin", "Bernard", "Petit", "Durand", "Leroy", "Moreau", "Girard", "Roux"]
MOTIFS_DEPART = ["Mutation dans une autre collectivité", "Fin de contrat", "Démission"]
FINANCEMENTS = [  # who co-finances a post besides the ANCT, and how often
    ((FinanceurPoste.ANCT, FinanceurPoste.BANQUE_DES_TERRITOIRES), 55),
    ((FinanceurPoste.ANCT, FinanceurPoste.ETAT), 20),
    ((FinanceurPoste.ANCT,), 12),
    ((FinanceurPoste.ANAH, FinanceurPoste.ANCT), 13),
]


def draw(rng: random.Random, weighted: list[tuple]):
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


class PosteGenerator:
    """One chef de projet post per beneficiary (one for all the beneficiaries of an EPCI in
    ``POSTES_PARTAGES``), in every state, with the people who held it, its history and its
    co-financing years within the programme's ceilings (postes/plafonds.py), dated from
    ``today`` so that vacancies and contract ends fall in every band the lists count."""

    def __init__(self, rng: random.Random, today: date) -> None:
        self.rng = rng
        self.today = today
        seed_regles(RegleCofinancement)  # the published rules, as the migration seeds them
        self.regles = list(RegleCofinancement.objects.all())
        self.counts = {"postes": 0, "occupations": 0, "lignes_postes": 0}

    def days(self, low: int, high: int) -> timedelta:
        return timedelta(days=self.rng.randint(low, high))

    def postes(self, beneficiaires: list[Beneficiaire]) -> None:
        communes = dict(
            MembreBeneficiaire.objects.filter(beneficiaire__in=beneficiaires, actif=True)
            .order_by("commune_id")
            .values_list("beneficiaire_id", "commune_id")
        )
        epcis = dict(EPCI.objects.filter(siren__startswith="9999").values_list("siren", "nom"))
        groupes: dict[str, list[Beneficiaire]] = {}
        for beneficiaire in beneficiaires:
            groupes.setdefault(beneficiaire.epci_id or "", []).append(beneficiaire)
        servis: list[list[Beneficiaire]] = []
        for n, (_, groupe) in enumerate(sorted(groupes.items())):
            if n % POSTES_PARTAGES == 0 and len(groupe) > 1:
                servis.append(groupe)
            else:
                servis.extend([b] for b in groupe)
        for start in range(0, len(servis), CHUNK):
            self.chunk(servis[start : start + CHUNK], communes, epcis)

    def chunk(self, servis: list[list[Beneficiaire]], communes: dict, epcis: dict) -> None:
        postes, histoires = [], []
        for groupe in servis:
            poste, histoire = self.poste(groupe, communes, epcis)
            postes.append(poste)
            histoires.append(histoire)
        postes = Poste.objects.bulk_create(postes, batch_size=BATCH_SIZE)
        Poste.beneficiaires.through.objects.bulk_create(
            [
                Poste.beneficiaires.through(poste_id=poste.pk, beneficiaire_id=b.pk)
                for poste, groupe in zip(postes, servis, strict=True)
                for b in groupe
            ],
            batch_size=BATCH_SIZE,
        )
        Poste.communes.through.objects.bulk_create(
            [
                Poste.communes.through(poste_id=poste.pk, commune_id=communes[b.pk])
                for poste, groupe in zip(postes, servis, strict=True)
                for b in groupe
                if b.pk in communes
            ],
            batch_size=BATCH_SIZE,
        )
        occupations, changements, annees, lignes = [], [], [], []
        for poste, (personnes, etats) in zip(postes, histoires, strict=True):
            occupations.extend(self.occupations(poste, personnes))
            changements.extend(self.changements(poste, etats))
            for annee, montants in self.cofinancements(poste, personnes):
                annees.append(annee)
                lignes.append(montants)
        Occupation.objects.bulk_create(occupations, batch_size=BATCH_SIZE)
        ChangementEtat.objects.bulk_create(changements, batch_size=BATCH_SIZE)
        annees = CofinancementAnnee.objects.bulk_create(annees, batch_size=BATCH_SIZE)
        for annee, montants in zip(annees, lignes, strict=True):
            for ligne in montants:
                ligne.annee = annee
        lignes = [ligne for montants in lignes for ligne in montants]
        LigneCofinancement.objects.bulk_create(lignes, batch_size=BATCH_SIZE)
        self.counts["postes"] += len(postes)
        self.counts["occupations"] += len(occupations)
        self.counts["lignes_postes"] += len(lignes)

    def poste(self, groupe: list[Beneficiaire], communes: dict, epcis: dict) -> tuple:
        """An unsaved post and its story: the people (start, departure, contract end) and the
        states in order with their dates."""
        rng, today = self.rng, self.today
        etat = draw(rng, ETATS_POSTE)
        premier = groupe[0]
        if len(groupe) > 1 or not communes.get(premier.pk) or rng.random() < 0.35:
            siren = premier.epci_id
            employeur = epcis.get(siren, siren)
        else:
            siren = f"21{communes[premier.pk][1:]:0>7}"
            employeur = premier.nom
        recent = etat == P.A_CREER or (etat == P.EN_RECRUTEMENT and rng.random() < 0.5)
        if recent:  # a post created lately, never filled yet
            creation = today - self.days(40, 400)
        else:
            creation = date(2021, 1, 4) + self.days(0, 540)
        personnes: list[tuple[date, date | None, date | None]] = []
        etats: list[tuple[str, date]] = [(P.A_CREER, creation)]
        vacant_depuis = publication = None
        if not recent:
            debut = creation + self.days(45, 200)
            if etat == P.POURVU and rng.random() < 0.3:  # a first person left
                fin = debut + self.days(300, 900)
                personnes.append((debut, fin, fin + self.days(0, 400)))
                debut = fin + self.days(30, 150)
            if etat == P.POURVU:
                # The current contract ends from next month to three years on: about one in
                # fifteen within 90 days, what the lists and the reminders announce.
                personnes.append((debut, None, today + self.days(10, 1100)))
            else:
                vacant_depuis = today - self.days(10, 420)
                fin = vacant_depuis - timedelta(days=1)
                personnes.append(
                    (min(debut, fin - timedelta(days=60)), fin, fin + self.days(0, 60))
                )
        for debut, fin, _ in personnes:
            etats.append((P.POURVU, debut))
            if fin is not None:
                etats.append((P.VACANT, fin + timedelta(days=1)))
        if etat == P.EN_RECRUTEMENT:
            depuis = vacant_depuis or creation
            publication = min(depuis + self.days(5, 60), today)
            etats.append((P.EN_RECRUTEMENT, publication))
        noms = " – ".join(b.nom for b in groupe)
        poste = Poste(
            intitule=f"{rng.choice(['Chef', 'Cheffe'])} de projet PVD {noms}",
            employeur_siren=siren,
            employeur_nom=employeur,
            type_contrat=draw(rng, CONTRATS),
            etp=Decimal("1")
            if rng.random() < 0.85
            else rng.choice([Decimal("0.5"), Decimal("0.8")]),
            date_creation=creation,
            etat=etat,
            date_publication=publication,
            lien_offre="https://choisirleservicepublic.gouv.fr/" if publication else "",
            vacant_depuis=vacant_depuis,
            motif_vacance=rng.choice(MOTIFS_DEPART) if vacant_depuis else "",
        )
        return poste, (personnes, etats)

    def occupations(self, poste: Poste, personnes: list) -> list[Occupation]:
        occupations = []
        for debut, fin, fin_contrat in personnes:
            prenom, nom = self.rng.choice(PRENOMS), self.rng.choice(NOMS_FAMILLE)
            occupations.append(
                Occupation(
                    poste=poste,
                    prenom=prenom,
                    nom=nom,
                    email=f"{prenom.lower()}.{nom.lower()}.{poste.pk}@example.fr",
                    date_debut=debut,
                    date_fin=fin,
                    date_fin_contrat=fin_contrat,
                    motif_fin=self.rng.choice(MOTIFS_DEPART) if fin else "",
                )
            )
        return occupations

    def changements(self, poste: Poste, etats: list[tuple[str, date]]) -> list[ChangementEtat]:
        changements, ancien = [], ""
        for nouvel, quand in etats:
            changements.append(
                ChangementEtat(
                    poste=poste,
                    ancien_etat=ancien,
                    nouvel_etat=nouvel,
                    date=quand,
                    commentaire="Banc de mesure (données fictives)",
                )
            )
            ancien = nouvel
        return changements

    def cofinancements(self, poste: Poste, personnes: list) -> list[tuple]:
        """Each year the post was filled: the loaded cost, and each funder's amounts within
        the year's ceilings (pro rata of the months filled); past years paid, the current
        one notified and partly paid, or only requested."""
        if not personnes:
            return []
        rng, today = self.rng, self.today
        financeurs = draw(rng, FINANCEMENTS)
        anah = FinanceurPoste.ANAH in financeurs
        cout = Decimal(rng.randrange(45_000, 68_000, 500))
        periodes = [(debut, fin) for debut, fin, _ in personnes]
        years = []
        for annee in range(max(personnes[0][0].year, 2021), today.year + 1):
            mois = mois_pourvus(periodes, annee)
            if not mois:
                continue
            plafond = calculer_plafond(annee, cout, mois, self.regles, anah)
            total = plafond.total
            if total is None:  # before 2023, no rule capped the total
                total = cout * Decimal("0.75") * len(mois) / 12
            elif anah:  # under both ceilings: a small Anah line leaves the year « sans Anah »
                total = min(total, calculer_plafond(annee, cout, mois, self.regles, False).total)
            montants = self.partage(financeurs, total * Decimal(rng.uniform(0.8, 1)), plafond)
            demande = date(annee, 2, 1) + self.days(0, 60)
            notifiee = date(annee, 4, 1) + self.days(0, 80)
            courante = annee == today.year
            seulement_demande = courante and (rng.random() < 0.15 or notifiee > today)
            lignes = []
            for financeur, montant in montants.items():
                notifie = Decimal(0) if seulement_demande else montant
                verse = notifie
                if courante:
                    verse = (notifie / 2).quantize(Decimal(1)) if rng.random() < 0.6 else 0
                lignes.append(
                    LigneCofinancement(
                        financeur=financeur,
                        montant_demande=montant,
                        montant_notifie=notifie,
                        date_notification=None if seulement_demande else notifiee,
                        montant_verse=verse,
                        date_versement=(date(annee, 12, 10) if not courante else notifiee)
                        if verse
                        else None,
                    )
                )
            cofinancement = CofinancementAnnee(
                poste=poste,
                annee=annee,
                cout_charge=cout,
                reference_dossier=f"DS-{annee % 100:02d}{poste.pk:06d}",
                date_demande=demande,
            )
            years.append((cofinancement, lignes))
            cout = min(cout + 500, Decimal(68_000))
        return years

    def partage(self, financeurs: tuple, total: Decimal, plafond) -> dict[str, Decimal]:
        """``total`` (whole euros) shared among the funders, each under its own ceiling (the
        Anah's share, the 2021 Banque des Territoires rule); the ANCT takes the rest."""
        total = Decimal(int(total))
        montants: dict[str, Decimal] = {}
        for financeur in financeurs:
            if financeur == FinanceurPoste.ANCT:
                continue
            part = total * Decimal(self.rng.uniform(0.25, 0.55))
            if financeur in plafond.par_financeur:
                part = min(part, plafond.par_financeur[financeur])
            montants[financeur] = Decimal(int(part))
        montants[FinanceurPoste.ANCT] = total - sum(montants.values(), Decimal(0))
        return montants


class Command(BaseCommand):
    help = (
        "Génère un jeu de données fictif à l'échelle nationale pour les bancs de mesure : "
        "bénéficiaires lauréats sur des communes d'essai (codes X0001…), leurs axes, fiches "
        "action, lignes de financement et indicateurs. Jamais sur une base réelle : refuse "
        "de tourner quand DEBUG est désactivé, sauf --yes-i-know. Sans --reset, ne fait rien "
        "si des données d'essai existent déjà."
    )

    def add_arguments(self, parser):
        parser.add_argument("--beneficiaires", type=int, default=1650, help="défaut : 1650")
        parser.add_argument("--fiches", type=int, default=50, help="par bénéficiaire ; défaut : 50")
        parser.add_argument(
            "--lignes", type=int, default=3, help="de financement par fiche ; défaut : 3"
        )
        parser.add_argument("--seed", type=int, default=42, help="graine aléatoire ; défaut : 42")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="supprime d'abord les données d'essai existantes "
            "(--reset --beneficiaires 0 : les supprime seulement)",
        )
        parser.add_argument(
            "--yes-i-know",
            action="store_true",
            help="accepter de tourner avec DEBUG désactivé (base de banc de mesure seulement)",
        )

    def handle(
        self,
        *args,
        beneficiaires: int,
        fiches: int,
        lignes: int,
        seed: int,
        reset: bool,
        yes_i_know: bool,
        **options,
    ) -> None:
        if not settings.DEBUG and not yes_i_know:
            raise CommandError(
                "Refusé : DEBUG est désactivé, cette base est peut-être une base de production. "
                "Ce générateur y créerait des milliers de bénéficiaires fictifs. S'il s'agit "
                "bien d'une base de banc de mesure, relancez avec --yes-i-know."
            )
        if not 0 <= beneficiaires <= MAX_BENEFICIAIRES:
            raise CommandError(f"--beneficiaires : entre 0 et {MAX_BENEFICIAIRES}.")
        if fiches < 0 or lignes < 0:
            raise CommandError("--fiches et --lignes ne peuvent pas être négatifs.")
        started = time.perf_counter()
        with transaction.atomic():
            if reset:
                deleted = delete_bench_data()
                self.stdout.write(f"Données d'essai supprimées : {deleted} bénéficiaires.")
            existing = list(bench_beneficiaires().order_by("pk"))
            if existing and bench_postes().exists():
                self.stdout.write(
                    f"Données d'essai déjà présentes ({len(existing)} bénéficiaires) : rien à "
                    "faire. Relancez avec --reset pour les régénérer."
                )
                return
            if not existing and not beneficiaires:
                return
            postes = PosteGenerator(random.Random(seed + 1), timezone.localdate())
            if existing:  # filled before the posts existed: only they are added
                postes.postes(existing)
                counts = postes.counts
                message = (
                    f"Données d'essai déjà présentes ({len(existing)} bénéficiaires), postes "
                    f"ajoutés en {time.perf_counter() - started:.1f} s : "
                )
            else:
                generator = Generator(random.Random(seed), fiches, lignes)
                communes = generator.territory(beneficiaires)
                created = generator.beneficiaires(communes)
                generator.plans(created, communes)
                postes.postes(created)
                counts = {**generator.counts, **postes.counts}
                message = (
                    f"Généré en {time.perf_counter() - started:.1f} s : {len(created)} "
                    f"bénéficiaires, {counts['fiches']} fiches action, {counts['lignes']} lignes "
                    f"de financement, {counts['indicateurs']} indicateurs, {counts['mesures']} "
                    "mesures, "
                )
        analyze()
        data_rewritten()  # written in bulk, without signals: every dashboard reads it again
        self.stdout.write(
            f"{message}{counts['postes']} postes de chef de projet, {counts['occupations']} "
            f"occupations, {counts['lignes_postes']} lignes de cofinancement."
        )
