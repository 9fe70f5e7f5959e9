"""The open data sets the portal publishes (/opendata/ and the public API): for each one its
title, its description, its columns and the rows it holds.

No person's name or e-mail is ever published: the rows are built from territories,
beneficiaries, conventions and financing lines, never from users or occupations
(tests/opendata/test_personal_data.py lists every published column).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone

from actions.models import FicheAction, LigneFinancement, abandonnee_q
from actions.plan import Livraison
from communes.models import Beneficiaire, Departement, IdentifiantPVD, MembreBeneficiaire
from conventions.echeances import with_echeances
from conventions.models import Convention
from postes.models import Poste
from tableaux.lecture import STATUTS, _status_sums, totaux_par

LICENCE = "Licence Ouverte 2.0 (Etalab)"
LICENCE_URL = "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"
# SCDL « subventions » 2.1.1 (schema.data.gouv.fr, scdl/subventions): vendored in schemas/.
SCDL_SUBVENTIONS = "scdl/subventions 2.1.1"


@dataclass
class Jeu:
    slug: str
    titre: str
    description: str
    colonnes: list[tuple[str, str]]
    schema: str = ""
    # Why rows of the source may be left out of the file: {reason key: what it says}; the
    # rows function counts them by key, the page shows each count with its reason.
    exclusions: dict[str, str] = field(default_factory=dict)
    rows: object = field(default=None, repr=False)

    @property
    def header(self) -> list[str]:
        return [name for name, _ in self.colonnes]


def _id_pvd() -> Subquery:
    """A commune's id_pvd in ANCT's latest list."""
    return Subquery(
        IdentifiantPVD.objects.filter(commune=OuterRef("commune"))
        .order_by("-date_liste")
        .values("id_pvd")[:1]
    )


def _membres(**filters):
    return (
        MembreBeneficiaire.objects.filter(actif=True, **filters)
        .select_related(
            "commune",
            "commune__departement__region",
            "commune__epci",
            "beneficiaire",
        )
        .annotate(id_pvd=_id_pvd())
        .order_by("commune_id")
    )


def _dates_beneficiaires(beneficiaires) -> dict[int, tuple[date | None, date | None]]:
    """{beneficiary id: (adhésion date, convention-cadre date)}, one query."""
    return {
        row["pk"]: (row["date_adhesion"], row["date_cadre"])
        for row in with_echeances(beneficiaires).values("pk", "date_adhesion", "date_cadre")
    }


# What each data set's rows function gives: its rows, and the source rows it left out, by
# reason (Jeu.exclusions).
Rows = tuple[Iterator[list], dict[str, int]]


def liste_pvd() -> Rows:
    laureats = Beneficiaire.objects.filter(statut=Beneficiaire.Statut.LAUREAT)
    dates = _dates_beneficiaires(laureats)

    def rows():
        for membre in _membres(beneficiaire__in=laureats).iterator(chunk_size=2000):
            adhesion = membre.date_signature or dates.get(membre.beneficiaire_id, (None,))[0]
            yield [membre.commune_id, membre.commune.nom, membre.id_pvd or "", adhesion]

    return rows(), {}


def liste_pvd_detaillee() -> Rows:
    dates = _dates_beneficiaires(Beneficiaire.objects.all())

    def rows():
        for membre in _membres().iterator(chunk_size=2000):
            commune, beneficiaire = membre.commune, membre.beneficiaire
            adhesion, cadre = dates.get(beneficiaire.pk, (None, None))
            epci = commune.epci
            region = commune.departement.region
            yield [
                commune.code,
                commune.nom,
                membre.id_pvd or "",
                membre.date_signature or adhesion,
                commune.siren,
                epci.siren if epci else "",
                epci.nom if epci else "",
                commune.departement_id,
                commune.departement.nom,
                region.code,
                region.nom,
                beneficiaire.nom,
                beneficiaire.get_statut_display(),
                cadre,
            ]

    return rows(), {}


def conventions_cadres() -> Rows:
    conventions = (
        Convention.objects.filter(type=Convention.Type.CADRE, statut__in=Convention.STATUTS_SIGNES)
        .select_related("beneficiaire__epci", "beneficiaire__departement")
        .prefetch_related("beneficiaire__membres")
        .order_by("beneficiaire__departement_id", "beneficiaire__nom", "pk")
    )

    def rows():
        for convention in conventions.iterator(chunk_size=500):
            beneficiaire = convention.beneficiaire
            codes = sorted(m.commune_id for m in beneficiaire.membres.all() if m.actif)
            yield [
                convention.pk,
                beneficiaire.nom,
                " ; ".join(codes),
                beneficiaire.epci_id or "",
                beneficiaire.epci.nom if beneficiaire.epci else "",
                beneficiaire.departement_id,
                beneficiaire.departement.nom,
                convention.statut_label,
                convention.date_signature,
                convention.date_entree_vigueur,
                convention.duree_annees,
                convention.date_fin,
            ]

    return rows(), {}


# SCDL subventions ---------------------------------------------------------------------------

NOTIFIEES = (LigneFinancement.Statut.NOTIFIE, LigneFinancement.Statut.VERSE)
MAITRES_PUBLICS = (FicheAction.MaitreOuvrage.COMMUNE, FicheAction.MaitreOuvrage.EPCI)
# The portal records neither how a grant is paid nor when: the SCDL requires both fields, so
# they say so (conditionsVersement is free text) or give the action's own period.
CONDITIONS_NON_SAISIES = "Non renseignées dans le portail"
CENT = Decimal("0.01")


def lignes_notifiees():
    return LigneFinancement.objects.filter(statut__in=NOTIFIEES)


def subventions_publiables():
    """The notified lines the SCDL file carries: a funder with its SIRET, a dated decision, a
    fiche carried by its EPCI or by one commune that can be told (the fiche's one commune, or
    the beneficiary's only one)."""
    maitre = "fiche__maitre_ouvrage_type"
    return (
        lignes_notifiees()
        .exclude(financeur__siret="")
        .filter(date_decision__isnull=False)
        .annotate(
            nb_communes_fiche=Count("fiche__communes", distinct=True),
            nb_membres=Count(
                "fiche__beneficiaire__membres",
                filter=Q(fiche__beneficiaire__membres__actif=True),
                distinct=True,
            ),
        )
        .filter(
            Q(**{maitre: FicheAction.MaitreOuvrage.EPCI}, fiche__beneficiaire__epci__isnull=False)
            | Q(**{maitre: FicheAction.MaitreOuvrage.COMMUNE})
            & (Q(nb_communes_fiche=1) | Q(nb_membres=1))
        )
        .select_related("financeur", "fiche__beneficiaire__epci")
        .prefetch_related("fiche__communes", "fiche__beneficiaire__membres__commune")
        .order_by("date_decision", "pk")
    )


def nom_beneficiaire(fiche: FicheAction) -> str:
    """nomBeneficiaire of a publishable line (``subventions_publiables``). Its idBeneficiaire
    stays empty: the reference data give a commune's or an EPCI's SIREN, not its SIRET."""
    if fiche.maitre_ouvrage_type == FicheAction.MaitreOuvrage.EPCI:
        return fiche.beneficiaire.epci.nom
    communes = list(fiche.communes.all())
    if len(communes) != 1:
        communes = [m.commune for m in fiche.beneficiaire.membres.all() if m.actif]
    return communes[0].nom


def periode(fiche: FicheAction, decision: date) -> str:
    debut = fiche.date_debut_reelle or fiche.date_debut_prevue
    fin = fiche.date_fin_reelle or fiche.date_fin_prevue
    if debut and fin and debut <= fin:
        return f"{debut.isoformat()}/{fin.isoformat()}"
    return decision.isoformat()


def pourcentage(montant: Decimal, cout: Decimal | None) -> Decimal | None:
    if not cout:
        return None
    part = (montant / cout).quantize(CENT, rounding=ROUND_HALF_UP)
    return part if CENT <= part <= 1 else None


def ligne_scdl(ligne: LigneFinancement) -> dict:
    """A notified line as one SCDL « subventions » 2.1.1 record."""
    fiche = ligne.fiche
    return {
        "nomAttribuant": ligne.financeur.nom,
        "idAttribuant": ligne.financeur.siret,
        "dateConvention": ligne.date_decision.isoformat(),
        "referenceDecision": "",
        "nomBeneficiaire": nom_beneficiaire(fiche),
        "idBeneficiaire": "",
        "rnaBeneficiaire": "",
        "objet": fiche.titre[:256],
        "montant": f"{ligne.montant:.2f}",
        "nature": "aide en numéraire",
        "conditionsVersement": CONDITIONS_NON_SAISIES,
        "datesPeriodeVersement": periode(fiche, ligne.date_decision),
        "idRAE": "",
        "notificationUE": "non",
        "pourcentageSubvention": (
            f"{p}" if (p := pourcentage(ligne.montant, fiche.cout_total)) is not None else ""
        ),
        "dispositifAide": ligne.dispositif,
    }


# Why a notified line is not in the SCDL file, in the order the rules apply.
SANS_SIRET, SANS_DATE, MAITRE_OUVRAGE = "sans_siret", "sans_date", "maitre_ouvrage"
EXCLUSIONS_SCDL = {
    SANS_SIRET: "financeur sans SIRET",
    SANS_DATE: "décision sans date",
    MAITRE_OUVRAGE: "maître d'ouvrage autre qu'une commune ou un EPCI identifié",
}


def subventions_exclues() -> dict[str, int]:
    """The notified lines the SCDL file leaves out, by reason (each line counted once, for the
    first reason that applies): two queries."""
    avec_siret = ~Q(financeur__siret="")
    counts = lignes_notifiees().aggregate(
        total=Count("pk"),
        sans_siret=Count("pk", filter=Q(financeur__siret="")),
        sans_date=Count("pk", filter=avec_siret & Q(date_decision__isnull=True)),
    )
    publiees = subventions_publiables().order_by().count()
    counts[MAITRE_OUVRAGE] = counts.pop("total") - counts[SANS_SIRET] - counts[SANS_DATE] - publiees
    return counts


def subventions() -> Rows:
    publiables = subventions_publiables()
    exclues = subventions_exclues()

    def rows():
        for ligne in publiables.iterator(chunk_size=500):
            yield list(ligne_scdl(ligne).values())

    return rows(), exclues


# Figures by département ---------------------------------------------------------------------


def chiffres_departements() -> Rows:
    actifs = Beneficiaire.objects.actifs()
    totaux = totaux_par(actifs, "departement", timezone.localdate())
    postes = {
        row["beneficiaires__departement"]: row
        for row in Poste.objects.filter(beneficiaires__in=actifs)
        .order_by()
        .values("beneficiaires__departement")
        .annotate(
            pourvus=Count("pk", filter=Q(etat=Poste.Etat.POURVU), distinct=True),
            vacants=Count("pk", filter=Q(etat=Poste.Etat.VACANT), distinct=True),
        )
    }

    def rows():
        for departement in Departement.objects.order_by("code"):
            t = totaux.get(departement.code, {})
            p = postes.get(departement.code, {})
            if not t and not p:
                continue
            yield [
                departement.code,
                departement.nom,
                t.get("nb_beneficiaires", 0),
                t.get("nb_fiches", 0),
                *(t.get(f"nb_{bucket}", 0) for bucket in Livraison.values),
                *(t.get(f"m_{statut}", Decimal("0")) for statut in STATUTS.values),
                p.get("pourvus", 0),
                p.get("vacants", 0),
            ]

    return rows(), {}


def financements_departements() -> Rows:
    lignes = (
        LigneFinancement.objects.filter(fiche__beneficiaire__in=Beneficiaire.objects.actifs())
        .filter(~abandonnee_q("fiche__"))
        .order_by()
        .values(
            "fiche__beneficiaire__departement",
            "fiche__beneficiaire__departement__nom",
            "financeur__nom",
        )
        .annotate(**_status_sums(""))
        .order_by("fiche__beneficiaire__departement", "financeur__nom")
    )

    def rows():
        for row in lignes:
            yield [
                row["fiche__beneficiaire__departement"],
                row["fiche__beneficiaire__departement__nom"],
                row["financeur__nom"],
                *(row[f"m_{statut}"] for statut in STATUTS.values),
            ]

    return rows(), {}


# The catalogue ------------------------------------------------------------------------------

_BUCKETS = [
    (f"fiches_{bucket}", f"fiches action « {label.lower()} »")
    for bucket, label in Livraison.choices
]
_MONTANTS = [
    (f"montant_{statut}", f"montant des financements au statut « {label.lower()} » (€)")
    for statut, label in STATUTS.choices
]

JEUX = [
    Jeu(
        "liste-pvd",
        "Liste des communes Petites villes de demain",
        "Les communes lauréates du programme, au format de la liste publiée par l'ANCT sur "
        "data.gouv.fr (jeu « Programme Petites villes de demain ») : mêmes quatre colonnes, "
        "séparateur virgule, dates AAAA-MM-JJ.",
        [
            ("insee_com", "code INSEE de la commune"),
            ("lib_com", "nom de la commune"),
            ("id_pvd", "identifiant PVD de l'ANCT (pvd-<région>-<département>-<n>)"),
            ("date_signature", "date de signature de la convention d'adhésion (AAAA-MM-JJ)"),
        ],
        rows=liste_pvd,
    ),
    Jeu(
        "liste-pvd-detaillee",
        "Communes du programme, détaillée",
        "Chaque commune d'un bénéficiaire du programme, avec son EPCI, son département, sa "
        "région, le statut du bénéficiaire et la date de sa convention-cadre.",
        [
            ("insee_com", "code INSEE de la commune"),
            ("lib_com", "nom de la commune"),
            ("id_pvd", "identifiant PVD de l'ANCT"),
            ("date_signature", "date de signature de la convention d'adhésion"),
            ("siren_com", "SIREN de la commune"),
            ("siren_epci", "SIREN de l'EPCI"),
            ("lib_epci", "nom de l'EPCI"),
            ("insee_dep", "code du département"),
            ("lib_dep", "nom du département"),
            ("insee_reg", "code de la région"),
            ("lib_reg", "nom de la région"),
            ("beneficiaire", "bénéficiaire PVD (commune ou binôme de communes)"),
            ("statut", "statut du bénéficiaire dans le programme"),
            ("date_convention_cadre", "date de signature de la convention-cadre valant ORT"),
        ],
        rows=liste_pvd_detaillee,
    ),
    Jeu(
        "conventions-cadres-ort",
        "Conventions-cadres PVD valant ORT",
        "Les conventions-cadres signées, qui valent opération de revitalisation de territoire "
        "(article L303-2 du code de la construction et de l'habitation).",
        [
            ("id_convention", "identifiant de la convention dans le portail"),
            ("beneficiaire", "bénéficiaire PVD"),
            ("insee_communes", "codes INSEE des communes, séparés par « ; »"),
            ("siren_epci", "SIREN de l'EPCI signataire"),
            ("lib_epci", "nom de l'EPCI"),
            ("insee_dep", "code du département"),
            ("lib_dep", "nom du département"),
            ("statut", "statut de la convention"),
            ("date_signature", "date de signature"),
            ("date_entree_vigueur", "date d'entrée en vigueur"),
            ("duree_annees", "durée en années"),
            ("date_fin", "date de fin"),
        ],
        rows=conventions_cadres,
    ),
    Jeu(
        "subventions",
        "Subventions notifiées aux actions des plans (SCDL)",
        "Une ligne par financement notifié ou versé d'une fiche action portée par une commune "
        "ou un EPCI, au format du schéma national « subventions » 2.1.1 du socle commun des "
        "données locales (SCDL). Les conditions et dates de versement ne sont pas saisies dans "
        "le portail : la période donnée est celle de l'action (ou la date de la décision).",
        [
            ("nomAttribuant", "financeur qui attribue la subvention"),
            ("idAttribuant", "SIRET du financeur"),
            ("dateConvention", "date de la décision de financement"),
            ("referenceDecision", "référence de la décision (non saisie)"),
            ("nomBeneficiaire", "commune ou EPCI bénéficiaire"),
            ("idBeneficiaire", "SIRET du bénéficiaire (absent du référentiel : vide)"),
            ("rnaBeneficiaire", "numéro RNA (sans objet : vide)"),
            ("objet", "intitulé de la fiche action (256 caractères au plus)"),
            ("montant", "montant notifié (€)"),
            ("nature", "aide en numéraire"),
            ("conditionsVersement", "conditions de versement"),
            ("datesPeriodeVersement", "période AAAA-MM-JJ/AAAA-MM-JJ ou date AAAA-MM-JJ"),
            ("idRAE", "identifiant au registre des aides d'État (vide)"),
            ("notificationUE", "aide notifiée à l'Union européenne (non)"),
            ("pourcentageSubvention", "part du coût de l'action (0,01 à 1)"),
            ("dispositifAide", "dispositif (par exemple DSIL 2024)"),
        ],
        schema=SCDL_SUBVENTIONS,
        exclusions=EXCLUSIONS_SCDL,
        rows=subventions,
    ),
    Jeu(
        "chiffres-departements",
        "Chiffres du programme par département",
        "Par département : bénéficiaires actifs, fiches action dans les quatre étapes de "
        "réalisation, montants des financements par statut, postes de chef de projet pourvus "
        "et vacants.",
        [
            ("insee_dep", "code du département"),
            ("lib_dep", "nom du département"),
            ("beneficiaires", "bénéficiaires actifs"),
            ("fiches", "fiches action suivies (hors abandonnées)"),
            *_BUCKETS,
            *_MONTANTS,
            ("postes_pourvus", "postes de chef de projet pourvus"),
            ("postes_vacants", "postes de chef de projet vacants"),
        ],
        rows=chiffres_departements,
    ),
    Jeu(
        "financements-departements",
        "Financements par département et par financeur",
        "Par département et par financeur : montants des lignes de financement des fiches "
        "action, par statut.",
        [
            ("insee_dep", "code du département"),
            ("lib_dep", "nom du département"),
            ("financeur", "financeur"),
            *_MONTANTS,
        ],
        rows=financements_departements,
    ),
]
PAR_SLUG = {jeu.slug: jeu for jeu in JEUX}
