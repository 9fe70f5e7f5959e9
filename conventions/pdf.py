"""The PDF of a convention: template → WeasyPrint bytes, and its generated versions.

``render_pdf`` is a plain function; ``generate_document`` stores one requested version
(called by the Celery task); ``request_generation`` numbers a new version and queues it
(the background-job protocol of ``pvd.jobs``).
"""

import base64
import functools
import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import unquote, urljoin

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max, Prefetch
from django.template.loader import render_to_string
from django.utils import timezone, translation

from actions.models import FicheAction, LigneFinancement
from actions.plan import COMPTEE, abandonnees, fiche_order_key, reste_et_depassement
from communes.models import EPCI, Commune
from pvd.french import date_longue, de
from pvd.jobs import Result

from .models import TITRES, TITRES_COURTS, Convention, DocumentConvention, Partie

TEMPLATE = "conventions/pdf/convention.html"
PLAN_TEMPLATE = "conventions/pdf/plan_a_date.html"
# PDF/A-2b: fonts embedded, sRGB output intent, XMP metadata. A-3 would only add the
# right to embed arbitrary files, which a convention does not need.
PDFA_VARIANT = "pdf/a-2b"
# The renderer addresses static files under an origin that can never resolve (.invalid,
# RFC 2606); the fetcher serves them from disk and nothing is ever downloaded.
STATIC_ORIGIN = "https://static.portail-pvd.invalid/"


class PdfRenderingError(ValueError):
    """The document cannot be rendered as it should be (not worth a retry)."""


# Static files -------------------------------------------------------------------------


# The State's « bloc marque » as django-dsfr ships it: the Marianne and the devise « Liberté
# Égalité Fraternité » are the two SVG images of the DSFR's logo stylesheet. WeasyPrint cannot
# read that stylesheet (calc() in background positions), so the images are taken from it.
DSFR_LOGO_CSS = "dsfr/dist/component/logo/logo.main.min.css"
SVG_IN_CSS = re.compile(r'url\("data:image/svg\+xml;charset=utf8,([^"]+)"\)')


@functools.cache
def bloc_marque() -> dict[str, str]:
    """The Marianne and the devise, as base64 data: URLs (nothing to escape in a style)."""
    path = finders.find(DSFR_LOGO_CSS)
    if not path:
        raise PdfRenderingError(f"Fichiers statiques introuvables : {DSFR_LOGO_CSS}")
    with open(path, encoding="utf-8") as css:
        marianne, devise = SVG_IN_CSS.findall(css.read())[:2]

    def data_url(encoded: str) -> str:
        svg = unquote(encoded).encode()
        return f"data:image/svg+xml;base64,{base64.b64encode(svg).decode()}"

    return {"marianne": data_url(marianne), "devise": data_url(devise)}


def static_base_url() -> str:
    return urljoin(STATIC_ORIGIN, settings.STATIC_URL)


def static_roots() -> list[tuple[str, str]]:
    """Where the staticfiles finders look, in their order, as (prefix, directory): what the
    renderer's child process needs to serve static files without Django."""
    roots = []
    for finder in finders.get_finders():
        if isinstance(finder, finders.FileSystemFinder):
            roots += [(prefix, str(root)) for prefix, root in finder.locations]
        elif isinstance(finder, finders.AppDirectoriesFinder):
            roots += [("", storage.location) for storage in finder.storages.values()]
        else:
            raise PdfRenderingError(f"Chercheur de fichiers statiques inconnu : {finder}")
    return roots


def __getattr__(name: str):
    """``StaticFilesURLFetcher`` and ``RefusedURL`` of the renderer, imported on first use:
    WeasyPrint stays out of the processes that never render (web workers)."""
    if name not in ("StaticFilesURLFetcher", "RefusedURL"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import pdf_render

    class StaticFilesURLFetcher(pdf_render.fetcher_class()):
        """The renderer's fetcher in this process, through the staticfiles finders."""

        def __init__(self, base_url: str | None = None) -> None:
            super().__init__(base_url or static_base_url(), lambda path: finders.find(path))

    globals().update(StaticFilesURLFetcher=StaticFilesURLFetcher, RefusedURL=pdf_render.RefusedURL)
    return globals()[name]


# Words of the document ------------------------------------------------------------------


EPCI_PREFIXES = {
    "CC ": "Communauté de communes ",
    "CA ": "Communauté d'agglomération ",
    "CU ": "Communauté urbaine ",
}


def nom_epci(epci: EPCI) -> str:
    """The EPCI's name with its nature spelt out, as in a deed (« CC … » → « Communauté … »)."""
    for short, long in EPCI_PREFIXES.items():
        if epci.nom.startswith(short):
            rest = epci.nom[len(short) :]
            # « CC Haute-Corrèze Communauté » is already named for what it is.
            if any(word in rest.split() for word in ("Communauté", "Agglo", "Agglomération")):
                return rest
            return long + rest
    return epci.nom


def designation_epci(epci: EPCI) -> str:
    """The EPCI inside a sentence: « la communauté de communes … »."""
    nom = nom_epci(epci)
    if nom.startswith(("Communauté", "Métropole")):
        return f"la {nom[0].lower()}{nom[1:]}"
    return nom


def nom_commune(commune: Commune) -> str:
    return f"Commune {de(commune.nom)}"


@dataclass(frozen=True, eq=False)
class PartieTexte:
    """A party as the document names it."""

    nom: str
    designation: str  # inside a sentence: « la commune d'Ussel », « l'État »
    nature: str
    representant: str
    represente_par: str  # « représentée par Mme …, maire d'Ussel »
    deliberation: str
    lieu: str
    signee_le: str
    is_collectivite: bool


# Partners whose name is feminine (« la Banque des Territoires, représentée par… »).
NOMS_FEMININS = {
    "Agence",
    "Ademe",
    "Anah",
    "Association",
    "Banque",
    "Caisse",
    "Chambre",
    "Collectivité",
    "Communauté",
    "Direction",
    "Fédération",
    "Métropole",
    "Région",
    "Société",
}


def partie_texte(partie: Partie) -> PartieTexte:
    deliberation = ""
    if partie.nature == Partie.Nature.COMMUNE and partie.commune_id:
        nom, lieu = nom_commune(partie.commune), partie.commune.nom
        designation = f"la commune {de(partie.commune.nom)}"
        conseil = "conseil municipal"
    elif partie.nature == Partie.Nature.EPCI and partie.epci_id:
        nom, lieu = nom_epci(partie.epci), ""
        designation = designation_epci(partie.epci)
        metropole = partie.epci.nature == EPCI.Nature.METROPOLE
        conseil = "conseil de la métropole" if metropole else "conseil communautaire"
    elif partie.nature == Partie.Nature.ETAT:
        nom, designation, lieu, conseil = "L'État", "l'État", "", ""
    else:
        nom, lieu, conseil = partie.nom_partenaire, "", ""
        designation = nom
    if partie.date_deliberation and conseil:
        deliberation = f"délibération du {conseil} du {date_longue(partie.date_deliberation)}"
    representant = partie.representant.strip()
    if not representant and partie.nature == Partie.Nature.ETAT:
        representant = "le préfet de département, délégué territorial de l'ANCT"
    feminin = partie.is_collectivite or nom.split(" ", 1)[0] in NOMS_FEMININS
    represente_par = ""
    if representant:
        represente_par = f"représenté{'e' if feminin else ''} par {representant}"
    return PartieTexte(
        nom=nom,
        designation=designation,
        nature=partie.nature,
        representant=representant,
        represente_par=represente_par,
        deliberation=deliberation,
        lieu=lieu,
        signee_le=date_longue(partie.date_signature),
        is_collectivite=partie.is_collectivite,
    )


def numero_avenant(avenant: Convention) -> int:
    ordered = avenant.convention_modifiee.avenants.order_by("date_redaction", "pk")
    return list(ordered.values_list("pk", flat=True)).index(avenant.pk) + 1


def titres(convention: Convention) -> tuple[str, str]:
    """The full title and the short one (running header)."""
    if convention.type != Convention.Type.AVENANT:
        return TITRES[convention.type], TITRES_COURTS[convention.type]
    modifiee = convention.convention_modifiee
    numero = numero_avenant(convention)
    modifie = TITRES[modifiee.type]
    titre = f"Avenant n° {numero} à la {modifie[0].lower()}{modifie[1:]}"
    if modifiee.date_signature:
        titre += f" signée le {date_longue(modifiee.date_signature)}"
    return titre, f"Avenant n° {numero} – {TITRES_COURTS[modifiee.type]}"


def enumeration(parties: list[PartieTexte]) -> str:
    """« la commune d'Ussel, la commune de La Courtine et l'État »."""
    noms = [p.designation for p in parties]
    if len(noms) < 2:
        return "".join(noms)
    return f"{', '.join(noms[:-1])} et {noms[-1]}"


def communes_retenues(communes: list[Commune]) -> str:
    """« Les communes d'Ussel et de La Courtine ont été retenues »."""
    if not communes:
        return "Le territoire a été retenu"
    noms = [de(c.nom) for c in communes]
    if len(noms) == 1:
        return f"La commune {noms[0]} a été retenue"
    return f"Les communes {', '.join(noms[:-1])} et {noms[-1]} ont été retenues"


def etat_document(convention: Convention) -> str:
    if convention.statut == Convention.Statut.BROUILLON:
        return f"Projet établi le {date_longue(convention.date_redaction)}"
    if convention.statut == Convention.Statut.EN_SIGNATURE:
        return "Version soumise à la signature des parties"
    if convention.date_signature:
        return f"Signée le {date_longue(convention.date_signature)}"
    return convention.get_statut_display()


# Annexed plan d'action ------------------------------------------------------------------


@dataclass(frozen=True)
class FicheAnnexe:
    """A fiche action as the annex prints it."""

    reference: str
    titre: str
    axe: str
    maitre_ouvrage: str
    cout_total: Decimal | None
    financements: list[tuple[str, Decimal]]


def annex_fiches(convention: Convention) -> list[FicheAnnexe]:
    """The beneficiary's plan d'action, by axis and reference, in two queries.

    Abandoned actions are left out, as from every total of a plan (actions/plan.py): the annex
    shows the plan the parties commit to, and says apart how many were abandoned.
    """
    fiches = (
        FicheAction.objects.filter(beneficiaire_id=convention.beneficiaire_id)
        .filter(COMPTEE)
        .select_related("axe")
        .prefetch_related(
            Prefetch("financements", queryset=LigneFinancement.objects.select_related("financeur"))
        )
    )
    return [
        FicheAnnexe(
            reference=fiche.reference,
            titre=fiche.titre,
            axe=str(fiche.axe),
            maitre_ouvrage=fiche.maitre_ouvrage or fiche.get_maitre_ouvrage_type_display(),
            cout_total=fiche.cout_total,
            financements=[
                (ligne.financeur.nom, ligne.montant) for ligne in fiche.financements.all()
            ],
        )
        for fiche in sorted(fiches, key=fiche_order_key)
    ]


MAX_COLONNES_FINANCEURS = 6


def maquette_financiere(fiches: list) -> dict | None:
    """Amounts per fiche and funder: the main funders as columns, the others grouped."""
    if not fiches:
        return None
    par_fiche = []
    totaux: dict[str, Decimal] = defaultdict(Decimal)
    for fiche in fiches:
        montants: dict[str, Decimal] = defaultdict(Decimal)
        for financeur, montant in fiche.financements:
            montants[financeur] += Decimal(montant or 0)
            totaux[financeur] += Decimal(montant or 0)
        par_fiche.append(montants)
    classes = sorted(totaux, key=lambda nom: (-totaux[nom], nom))
    if len(classes) > MAX_COLONNES_FINANCEURS:
        colonnes = classes[: MAX_COLONNES_FINANCEURS - 1]
    else:
        colonnes = classes
    avec_autres = len(colonnes) < len(classes)
    lignes = []
    for fiche, montants in zip(fiches, par_fiche, strict=True):
        autres = sum((v for k, v in montants.items() if k not in colonnes), Decimal(0))
        total = sum(montants.values(), Decimal(0))
        reste, depassement = reste_et_depassement(fiche.cout_total, total)
        lignes.append(
            {
                "fiche": fiche,
                "montants": [montants.get(nom) for nom in colonnes],
                "autres": autres or None,
                "total": total,
                "reste": reste,
                "depassement": depassement,
            }
        )
    total_finance = sum(totaux.values(), Decimal(0))
    total_autres = sum((totaux[n] for n in classes if n not in colonnes), Decimal(0))
    cout_total = sum((Decimal(f.cout_total or 0) for f in fiches), Decimal(0))
    reste, depassement = reste_et_depassement(cout_total, total_finance)
    return {
        "financeurs": colonnes,
        "avec_autres": avec_autres,
        "lignes": lignes,
        "totaux": [totaux[nom] for nom in colonnes],
        "total_autres": total_autres,
        "part_autres": round(100 * total_autres / total_finance) if total_finance else 0,
        "total_finance": total_finance,
        "cout_total": cout_total,
        "reste": reste,
        "depassement": depassement,
        "parts": [
            round(100 * totaux[nom] / total_finance) if total_finance else 0 for nom in colonnes
        ],
    }


# Rendering --------------------------------------------------------------------------------


def convention_context(convention: Convention, fiches: list) -> dict:
    beneficiaire = convention.beneficiaire
    membres = beneficiaire.membres.filter(actif=True).select_related("commune__departement")
    communes = sorted((m.commune for m in membres), key=lambda c: (-(c.population or 0), c.nom))
    parties = list(convention.parties.select_related("commune", "epci").order_by("ordre", "pk"))
    signataires = [partie_texte(p) for p in parties if p.role == Partie.Role.SIGNATAIRE]
    en_presence = [partie_texte(p) for p in parties if p.role == Partie.Role.EN_PRESENCE]
    collectivites = [p for p in signataires if p.is_collectivite]
    partenaires = [p for p in signataires if p.nature == Partie.Nature.PARTENAIRE]
    entre = collectivites or signataires[:1]
    titre, titre_court = titres(convention)
    secteurs = list(
        convention.secteurs.select_related("commune").order_by("commune__nom", "nom", "pk")
    )
    return {
        "convention": convention,
        "beneficiaire": beneficiaire,
        "communes": communes,
        "communes_retenues": communes_retenues(communes),
        "epci": beneficiaire.epci,
        "nom_epci": nom_epci(beneficiaire.epci) if beneficiaire.epci_id else "",
        "epci_designation": designation_epci(beneficiaire.epci) if beneficiaire.epci_id else "",
        "departement": beneficiaire.departement,
        "titre": titre,
        "titre_phrase": titre[0].lower() + titre[1:],
        "titre_court": titre_court,
        "etat_document": etat_document(convention),
        "is_cadre": convention.type == Convention.Type.CADRE,
        "is_adhesion": convention.type == Convention.Type.ADHESION,
        "is_avenant": convention.type == Convention.Type.AVENANT,
        "signataires": signataires,
        "en_presence": en_presence,
        # « ENTRE » the collectivités « ET » the other signatories, as in ANCT's model.
        "entre": entre,
        "et": [p for p in signataires if p not in entre],
        "collectivites": collectivites,
        "collectivites_enumeration": enumeration(collectivites),
        "etat_signataire": any(p.nature == Partie.Nature.ETAT for p in signataires),
        "partenaires": partenaires,
        "partenaires_enumeration": enumeration(partenaires),
        "secteurs": secteurs,
        "modifiee": convention.convention_modifiee,
        "modifiee_signee_le": date_longue(
            convention.convention_modifiee and convention.convention_modifiee.date_signature
        ),
        "entree_vigueur": date_longue(convention.date_entree_vigueur),
        "date_fin": date_longue(convention.date_fin),
        "fiches": fiches,
        "maquette": maquette_financiere(fiches),
        "abandonnees": abandonnees(
            FicheAction.objects.filter(beneficiaire_id=convention.beneficiaire_id)
        ),
        "annexe_du": date_longue(timezone.localdate()),
        "genere_le": timezone.now().replace(microsecond=0).isoformat(),
    }


NBSP = "\u00a0"
# French typography: no line break inside « » nor before ; : ! ? (Marianne has no U+202F,
# so the plain no-break space is used).
ESPACES_INSECABLES = [
    ("« ", "«" + NBSP),
    (" »", NBSP + "»"),
    (" ;", NBSP + ";"),
    (" :", NBSP + ":"),
    (" ?", NBSP + "?"),
    (" !", NBSP + "!"),
    ("n° ", "n°" + NBSP),
]


def typographie(html: str) -> str:
    for espace, insecable in ESPACES_INSECABLES:
        html = html.replace(espace, insecable)
    return html


def document_html(
    convention: Convention,
    *,
    fiches: list | None = None,
    nature: str = DocumentConvention.Nature.CONVENTION,
) -> str:
    """The HTML that ``render_pdf`` lays out."""
    if fiches is None:
        fiches = annex_fiches(convention)
    template = PLAN_TEMPLATE if nature == DocumentConvention.Nature.PLAN else TEMPLATE
    with translation.override("fr"):
        return typographie(render_to_string(template, convention_context(convention, fiches)))


def render_pdf(
    convention: Convention,
    *,
    pdfa: bool = False,
    fiches: list | None = None,
    nature: str = DocumentConvention.Nature.CONVENTION,
) -> bytes:
    """The convention as a PDF, or its plan d'action à date (``nature``); ``fiches`` replaces
    the plan d'action (benchmarks)."""
    html = document_html(convention, fiches=fiches, nature=nature)
    from . import pdf_render

    options = {"pdf_variant": PDFA_VARIANT} if pdfa else {}
    content, missing, _ = pdf_render.render_in_child(
        html, static_base_url(), static_roots(), options
    )
    if missing:
        # WeasyPrint would silently drop a missing stylesheet or font: refuse the result.
        raise PdfRenderingError(f"Fichiers statiques introuvables : {', '.join(missing)}")
    return content


# Generated versions ---------------------------------------------------------------------------


def document_filename(document: DocumentConvention) -> str:
    return document.result_filename()


DOCUMENT_FAILED = (
    "La génération du PDF a échoué ({detail}). La version précédente reste disponible ; "
    "relancez la génération ou signalez le problème à l'équipe du portail."
)


def generate_document(document_id: int) -> None:
    """Render and store a requested version; running it again changes nothing."""
    DocumentConvention.run(
        document_id, render_document, failed=DOCUMENT_FAILED, related=["convention__beneficiaire"]
    )


def render_document(document: DocumentConvention) -> Result:
    content = render_pdf(document.convention, pdfa=document.pdfa, nature=document.nature)
    return ContentFile(content), {"sha256": hashlib.sha256(content).hexdigest()}


def request_generation(
    convention: Convention, user, *, pdfa: bool = False, nature: str | None = None
) -> DocumentConvention:
    """Number the next version and queue its generation once the transaction commits.

    A signed convention is never generated again from today's plan: what is asked for is the
    plan d'action à date, a separate document (its signed version is `freeze_signed`'s).
    """
    if nature is None:
        nature = (
            DocumentConvention.Nature.CONVENTION
            if convention.is_editable
            else DocumentConvention.Nature.PLAN
        )
    with transaction.atomic():
        # Locking the convention serialises concurrent requests (a double click): each one
        # reads the highest number only after the previous one has committed its row.
        Convention.objects.select_for_update().only("pk").get(pk=convention.pk)
        last = convention.documents.aggregate(last=Max("version"))["last"] or 0
        return DocumentConvention.request(
            convention=convention, version=last + 1, pdfa=pdfa, requested_by=user, nature=nature
        )


def freeze_signed(convention: Convention, user) -> DocumentConvention:
    """The convention as signed, with the plan d'action of the day of signature in annex: the
    archival version (PDF/A) kept and served from then on."""
    return request_generation(convention, user, pdfa=True, nature=DocumentConvention.Nature.SIGNEE)
