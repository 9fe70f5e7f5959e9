"""Exports of fiches action: CSV streamed row by row, XLSX in write-only mode (a sheet of
fiches, a sheet of financing lines), and the large workbooks built by a Celery task.

Rows are read with ``values_list`` and ``iterator()``: memory stays flat whatever the number
of fiches, and the amount financed comes from an annotation, not from a query per fiche.
"""

import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

from django.core.files import File
from django.db.models import QuerySet
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from communes.models import Beneficiaire, Departement
from pvd import policy, spreadsheets
from pvd.jobs import JobRefused, Progress, Result

from .models import ExportPlan, FicheAction, LigneFinancement
from .plan import fiches_with_totals, reference_order

XLSX_CONTENT_TYPE = spreadsheets.XLSX_CONTENT_TYPE
CHUNK_SIZE = 2_000
# Storage and I/O hiccups: worth a retry of the task; anything else is a real failure.

MAITRE_OUVRAGE = dict(FicheAction.MaitreOuvrage.choices)
MATURITE = dict(FicheAction.Maturite.choices)
AVANCEMENT = dict(FicheAction.Avancement.choices)
PRIORITE = dict(FicheAction.Priorite.choices)
NATURE = dict(FicheAction.Nature.choices)
STATUT = dict(LigneFinancement.Statut.choices)

FICHE_FIELDS = (
    "beneficiaire__nom",
    "beneficiaire__departement_id",
    "beneficiaire__departement__nom",
    "reference",
    "titre",
    "axe__numero",
    "axe__nom",
    "maitre_ouvrage_type",
    "maitre_ouvrage",
    "maturite",
    "avancement",
    "priorite",
    "budget_vert",
    "nature",
    "date_debut_prevue",
    "date_fin_prevue",
    "date_debut_reelle",
    "date_fin_reelle",
    "cout_total",
    "finance",
    "reste",
    "depassement",
)
FICHE_HEADERS = [
    "Bénéficiaire",
    "Code département",
    "Département",
    "Référence",
    "Titre",
    "Axe",
    "Type de maître d'ouvrage",
    "Maître d'ouvrage",
    "Maturité",
    "Avancement",
    "Priorité",
    "Budget vert",
    "Nature",
    "Début prévu",
    "Fin prévue",
    "Début réel",
    "Fin réelle",
    "Coût total HT (€)",
    "Total financé (€)",
    "Reste à financer (€)",
    "Dépassement (€)",
]
FICHE_WIDTHS = [30, 10, 18, 10, 50, 36, 22, 28, 14, 16, 10, 10, 16, 12, 12, 12, 12, 16, 16, 16, 16]

LIGNE_FIELDS = (
    "fiche__beneficiaire__nom",
    "fiche__beneficiaire__departement_id",
    "fiche__reference",
    "fiche__titre",
    "financeur__nom",
    "dispositif",
    "montant",
    "fiche__cout_total",
    "statut",
    "date_decision",
)
LIGNE_HEADERS = [
    "Bénéficiaire",
    "Code département",
    "Référence de la fiche",
    "Titre de la fiche",
    "Financeur",
    "Dispositif",
    "Montant (€)",
    "Part du coût (%)",
    "Statut",
    "Date de décision",
]
LIGNE_WIDTHS = [30, 10, 12, 50, 24, 28, 16, 12, 12, 14]


# Rows ---------------------------------------------------------------------------------------


def fiches_for(user, **filters) -> QuerySet:
    """The fiches with their financing, reste à financer and dépassement, in plan order."""
    return fiches_with_totals(FicheAction.objects.for_user(user).filter(**filters)).order_by(
        "beneficiaire__departement_id",
        "beneficiaire__nom",
        "beneficiaire_id",
        "axe__numero",
        *reference_order(),
    )


def lignes_for(user, **filters) -> QuerySet:
    return (
        LigneFinancement.objects.filter(fiche__beneficiaire__in=Beneficiaire.objects.for_user(user))
        .filter(**filters)
        .order_by(
            "fiche__beneficiaire__departement_id",
            "fiche__beneficiaire__nom",
            "fiche__beneficiaire_id",
            "fiche__axe__numero",
            *reference_order("fiche__reference"),
            "financeur__ordre",
            "pk",
        )
    )


def fiche_rows(fiches: QuerySet) -> Iterator[list]:
    """One row per fiche; the writers of pvd.spreadsheets format the values."""
    for (
        beneficiaire,
        code,
        departement,
        reference,
        titre,
        axe_numero,
        axe_nom,
        mo_type,
        mo,
        maturite,
        avancement,
        priorite,
        budget_vert,
        nature,
        debut_prevu,
        fin_prevue,
        debut_reel,
        fin_reelle,
        cout,
        finance,
        reste,
        depassement,
    ) in fiches.values_list(*FICHE_FIELDS).iterator(chunk_size=CHUNK_SIZE):
        yield [
            beneficiaire,
            code,
            departement,
            reference,
            titre,
            f"{axe_numero}. {axe_nom}",
            MAITRE_OUVRAGE.get(mo_type, ""),
            mo,
            MATURITE.get(maturite, maturite),
            AVANCEMENT.get(avancement, avancement),
            PRIORITE.get(priorite, priorite),
            "oui" if budget_vert else "non",
            NATURE.get(nature, nature),
            debut_prevu,
            fin_prevue,
            debut_reel,
            fin_reelle,
            cout,
            finance,
            reste,
            depassement,
        ]


def ligne_rows(lignes: QuerySet) -> Iterator[list]:
    for (
        beneficiaire,
        code,
        reference,
        titre,
        financeur,
        dispositif,
        montant,
        cout,
        statut,
        date_decision,
    ) in lignes.values_list(*LIGNE_FIELDS).iterator(chunk_size=CHUNK_SIZE):
        part = round(Decimal(100) * montant / cout, 1) if cout else None
        yield [
            beneficiaire,
            code,
            reference,
            titre,
            financeur,
            dispositif,
            montant,
            part,
            STATUT.get(statut, statut),
            date_decision,
        ]


# CSV ----------------------------------------------------------------------------------------


def csv_response(fiches: QuerySet, filename: str) -> StreamingHttpResponse:
    return spreadsheets.csv_response(FICHE_HEADERS, fiche_rows(fiches), filename)


# XLSX ---------------------------------------------------------------------------------------


def _header(sheet, headers: list[str], widths: list[int]) -> None:
    font = Font(bold=True, color="FFFFFF")
    fill = PatternFill("solid", fgColor="000091")
    for i, width in enumerate(widths):
        sheet.column_dimensions[get_column_letter(i + 1)].width = width
    sheet.freeze_panes = "A2"
    cells = []
    for title in headers:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font, cell.fill = font, fill
        cells.append(cell)
    sheet.append(cells)


def write_workbook(
    fiches: QuerySet,
    lignes: QuerySet,
    output,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Both sheets into ``output``; ``progress`` is told the rows written on each row (a
    ``pvd.jobs.Progress`` records it every few seconds)."""
    workbook = Workbook(write_only=True)
    written = 0
    for title, headers, widths, rows in (
        ("Fiches action", FICHE_HEADERS, FICHE_WIDTHS, fiche_rows(fiches)),
        ("Financements", LIGNE_HEADERS, LIGNE_WIDTHS, ligne_rows(lignes)),
    ):
        sheet = workbook.create_sheet(title)
        _header(sheet, headers, widths)
        for row in rows:
            sheet.append(spreadsheets.xlsx_row(sheet, row))
            written += 1
            if progress:
                progress(written)
    workbook.save(output)
    return written


def xlsx_response(fiches: QuerySet, lignes: QuerySet, filename: str) -> FileResponse:
    output = tempfile.TemporaryFile()
    write_workbook(fiches, lignes, output)
    output.seek(0)
    return FileResponse(
        output, as_attachment=True, filename=f"{filename}.xlsx", content_type=XLSX_CONTENT_TYPE
    )


def filename(prefix: str) -> str:
    return f"{prefix}-{timezone.localdate():%Y-%m-%d}"


# Workbooks built by a task --------------------------------------------------------------------


def request_export(user, departement: Departement | None = None) -> ExportPlan:
    """Record the request and queue the workbook once the transaction commits."""
    return ExportPlan.request(
        perimetre=(
            ExportPlan.Perimetre.DEPARTEMENT if departement else ExportPlan.Perimetre.NATIONAL
        ),
        departement=departement,
        requested_by=user,
    )


def export_filename(export: ExportPlan) -> str:
    return export.result_filename()


EXPORT_FAILED = (
    "L'export a échoué ({detail}). Relancez-le ou signalez le problème à l'équipe du portail."
)


def build_export(export_id: int) -> None:
    """Write and store a requested workbook; running it again changes nothing."""
    ExportPlan.run(export_id, write_export, failed=EXPORT_FAILED, related=["requested_by"])


def write_export(export: ExportPlan, clock: Callable[[], float] = time.monotonic) -> Result:
    """The workbook of the fiches the requester may read, its progress kept on the row every
    few seconds (``pvd.jobs.PROGRESS_SECONDS``, by ``clock``), not every so many rows."""
    user = export.requested_by
    if user is None or not policy.may_see_export(user, export):
        raise JobRefused("Le demandeur n'a plus le droit de faire cet export.")
    filters = (
        {"beneficiaire__departement_id": export.departement_id} if export.departement_id else {}
    )
    fiches = fiches_for(user, **filters)
    lignes = lignes_for(user, **{f"fiche__{k}": v for k, v in filters.items()})
    total = fiches.count() + lignes.count()
    pending = ExportPlan.objects.filter(pk=export.pk, statut=ExportPlan.Statut.EN_COURS)
    pending.update(lignes_total=total, lignes_faites=0)
    output = tempfile.TemporaryFile()  # closed by ExportPlan.run once stored
    try:
        progress = Progress(lambda done: pending.update(lignes_faites=done), clock=clock)
        write_workbook(fiches, lignes, output, progress)
    except BaseException:
        output.close()
        raise
    output.seek(0)
    name = f"export-{export.pk}.xlsx"  # the stored name comes from result_filename()
    return File(output, name=name), {"lignes_total": total, "lignes_faites": total}
