"""The yearly refresh of the official reference from the portal.

National staff upload the new official files (COG, SIREN/EPCI table, populations, ANCT list,
ORT tracking file, coordinates). Each upload is parsed by its importer's reader before it is
stored (size, type, encoding, columns, every row): a file the command line would refuse is
refused on the page, with the same French message. The files are stored through the storage
API, then a job (``MiseAJourReferentiel``) imports them in order with the command line's
importers (read → plan → apply, one shared report):

1. first as a **simulation**: everything runs inside a transaction rolled back at the end, so
   the report says exactly what the import would change and nothing is kept;
2. then, on confirmation, **applied** in one transaction: all or nothing.

Besides the importers' own reports, the simulation lists what national staff must look at
first: the beneficiaries whose communes the new COG merges, renames or moves.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.template.defaultfilters import filesizeformat

from communes.importers import territoires
from communes.importers.cog import parse_cog
from communes.importers.coordonnees import (
    CoordonneesImportError,
    import_coordonnees,
    parse_coordonnees,
)
from communes.importers.csvfile import ImportFileError
from communes.importers.populations import parse_populations
from communes.importers.pvd import PvdImportError, import_pvd, parse_liste
from communes.importers.report import section_lines
from communes.importers.siren import parse_siren
from communes.models import Beneficiaire, MembreBeneficiaire, MiseAJourReferentiel
from conventions.importers.ort import OrtImportError, import_ort, parse_ort
from pvd.cache import data_rewritten
from pvd.jobs import JobRefused, Result

# The COG is about 5 Mo, the ORT file 1 Mo: ten times that is plenty for a yearly file.
MAX_SIZE = 50 * 1024 * 1024
EXTENSIONS = (".csv", ".txt")
PARSERS = {
    "cog": parse_cog,
    "siren": parse_siren,
    "populations": parse_populations,
    "liste_pvd": parse_liste,
    "ort": parse_ort,
    "coordonnees": parse_coordonnees,
}
REFUSED = (ImportFileError, PvdImportError, OrtImportError, CoordonneesImportError)
FAILED = "La mise à jour du référentiel a échoué ({detail}). La base n'a pas été modifiée."

# Sections of the beneficiaries' part of the report.
FUSIONNEES = "Communes de bénéficiaires absentes du nouveau COG (fusionnées ou renumérotées)"
RENOMMEES = "Communes de bénéficiaires renommées"
EPCI_CHANGE = "Communes de bénéficiaires qui changent d'EPCI"
DEPARTEMENT_CHANGE = "Communes de bénéficiaires qui changent de département"


# Receiving a file ---------------------------------------------------------------------------


def check_upload(upload, kind: str) -> None:
    """Refuse, in French, a file its importer would not read; the upload is not trusted."""
    if upload.size > MAX_SIZE:
        raise ValidationError(
            f"Le fichier pèse {filesizeformat(upload.size)} : la limite est de "
            f"{filesizeformat(MAX_SIZE)}."
        )
    if not upload.name.lower().endswith(EXTENSIONS):
        raise ValidationError(
            "Déposez le fichier au format CSV (.csv), encodé en UTF-8, tel que publié."
        )
    with tempfile.TemporaryDirectory(prefix="referentiel-") as folder:
        path = Path(folder) / f"{kind}.csv"
        with open(path, "wb") as copy:
            for chunk in upload.chunks():
                copy.write(chunk)
        upload.seek(0)
        try:
            PARSERS[kind](path)
        except REFUSED as error:
            raise ValidationError(f"Fichier refusé : {error}") from None


# Running the import ---------------------------------------------------------------------------


@contextmanager
def local_copies(maj: MiseAJourReferentiel):
    """The stored files copied to a temporary folder (the importers read paths)."""
    folder = Path(tempfile.mkdtemp(prefix="referentiel-"))
    try:
        paths = {}
        for name, _label, stored in maj.fichiers():
            path = folder / f"{name}.csv"
            with stored.open("rb") as source, open(path, "wb") as copy:
                shutil.copyfileobj(source, copy)
            paths[name] = path
        yield paths
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def beneficiaires_touches(plan: territoires.Plan) -> dict[str, list[str]]:
    """What the new COG does to the communes of the active beneficiaries."""
    sections: dict[str, list[str]] = {}
    membres = (
        MembreBeneficiaire.objects.filter(
            actif=True, beneficiaire__in=Beneficiaire.objects.actifs()
        )
        .select_related("commune", "beneficiaire")
        .order_by("commune_id")
    )
    for membre in membres:
        commune, nom = membre.commune, membre.beneficiaire.nom
        wanted = plan.communes.get(commune.code)
        if wanted is None:
            sections.setdefault(FUSIONNEES, []).append(
                f"{nom} : {commune.code} {commune.nom} n'est plus dans le COG"
            )
            continue
        if wanted.nom != commune.nom:
            sections.setdefault(RENOMMEES, []).append(
                f"{nom} : {commune.code} {commune.nom} devient {wanted.nom}"
            )
        if wanted.epci is not territoires.KEEP and wanted.epci != commune.epci_id:
            sections.setdefault(EPCI_CHANGE, []).append(
                f"{nom} : {commune.code} {commune.nom}, EPCI {commune.epci_id or 'aucun'} → "
                f"{wanted.epci or 'aucun'}"
            )
        if wanted.departement != commune.departement_id:
            sections.setdefault(DEPARTEMENT_CHANGE, []).append(
                f"{nom} : {commune.code} {commune.nom}, département "
                f"{commune.departement_id} → {wanted.departement}"
            )
    return sections


def run_imports(maj: MiseAJourReferentiel, paths: dict[str, Path]) -> list[str]:
    """Import the files in order with the command line's importers; the report's parts."""
    parts = []
    if "cog" in paths:
        plan = territoires.build_plan(
            territoires.read_files(paths["cog"], paths["siren"], paths.get("populations"))
        )
        # The report and the ImportRun name the stored files, not the temporary copies.
        stored = {str(path): getattr(maj, name).name for name, path in paths.items()}
        plan.report.files = [
            (label, Path(stored.get(str(path), path)) if path else None)
            for label, path in plan.report.files
        ]
        touches = beneficiaires_touches(plan)
        order = [FUSIONNEES, RENOMMEES, EPCI_CHANGE, DEPARTEMENT_CHANGE]
        lines = section_lines(touches, order, limit=None)
        parts.append(
            "\n".join(["Bénéficiaires concernés :", *lines])
            if lines
            else "Aucun bénéficiaire concerné par le nouveau COG."
        )
        parts.append(territoires.apply_plan(plan).render(limit=None))
    if "liste_pvd" in paths:
        parts.append(import_pvd(paths["liste_pvd"], maj.date_liste).render(limit=None))
    if "ort" in paths:
        parts.append(import_ort(paths["ort"]).render(limit=None))
    if "coordonnees" in paths:
        parts.append(import_coordonnees(paths["coordonnees"]).render(limit=None))
    for name, path in paths.items():
        parts = [part.replace(str(path), getattr(maj, name).name) for part in parts]
    data_rewritten()  # written in bulk, without signals: every dashboard reads it again
    return parts


ALREADY_APPLIED = "Cette simulation est déjà appliquée ou en cours d'application."


def stale_reason(
    simulation: MiseAJourReferentiel | None, application: MiseAJourReferentiel | None = None
) -> str:
    """Why a simulation cannot be applied (or no longer), or ''; ``application`` is the
    row that applies it, when it is being applied."""
    if (
        simulation is None
        or simulation.mode != MiseAJourReferentiel.Mode.SIMULATION
        or simulation.statut != MiseAJourReferentiel.Statut.PRET
    ):
        return "Seule une simulation terminée peut être appliquée."
    others = MiseAJourReferentiel.objects.exclude(pk=application.pk if application else None)
    if others.filter(simulation=simulation).exists():
        return ALREADY_APPLIED
    later = others.filter(
        mode=MiseAJourReferentiel.Mode.APPLICATION,
        statut=MiseAJourReferentiel.Statut.PRET,
        finished_at__gt=simulation.requested_at,
    )
    if later.exists():
        return (
            "Le référentiel a été mis à jour depuis cette simulation : son compte rendu n'est "
            "plus exact. Relancez une simulation avec ces fichiers."
        )
    return ""


def work(maj: MiseAJourReferentiel) -> Result:
    simulation = maj.mode == MiseAJourReferentiel.Mode.SIMULATION
    source = maj if simulation else maj.simulation
    try:
        with local_copies(source) as paths, transaction.atomic():
            if not simulation:
                reason = stale_reason(maj.simulation, maj)
                if reason:
                    raise JobRefused(reason)
            parts = run_imports(source, paths)
            # The simulation changes nothing: everything it wrote is rolled back.
            transaction.set_rollback(simulation)
    except REFUSED as error:
        raise JobRefused(f"Import annulé, base inchangée. {error}") from None
    title = (
        "Simulation : rien n'a été enregistré. Voici ce que l'application changerait."
        if simulation
        else "Mise à jour appliquée."
    )
    rapport = "\n\n".join([title, *parts])
    return ContentFile(rapport.encode()), {"rapport": rapport}


def mettre_a_jour(pk: int) -> bool:
    return MiseAJourReferentiel.run(pk, work, failed=FAILED, related=["simulation"])
