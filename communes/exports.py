"""Exports of the beneficiaries list: CSV streamed row by row, XLSX in write-only mode."""

import tempfile
from collections.abc import Callable, Iterator

from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from openpyxl import Workbook

from pvd import spreadsheets

from .models import Beneficiaire


def _communes(b: Beneficiaire) -> list:
    return [m.commune for m in b.membres_actifs]


def _last_id_pvd(commune) -> str:
    ids = list(commune.identifiants_pvd.all())
    return ids[0].id_pvd if ids else ""


COLUMNS: dict[str, tuple[str, Callable[[Beneficiaire], object]]] = {
    "id": ("Identifiant portail", lambda b: b.pk),
    "nom": ("Bénéficiaire", lambda b: b.nom),
    "statut": ("Statut", lambda b: b.get_statut_display()),
    "region": ("Région", lambda b: b.departement.region.nom),
    "departement_code": ("Code département", lambda b: b.departement_id),
    "departement": ("Département", lambda b: b.departement.nom),
    "epci_siren": ("SIREN EPCI", lambda b: b.epci_id or ""),
    "epci": ("EPCI", lambda b: b.epci.nom if b.epci_id else ""),
    "communes": ("Communes", lambda b: ", ".join(c.nom for c in _communes(b))),
    "codes_insee": ("Codes INSEE", lambda b: ", ".join(c.code for c in _communes(b))),
    "id_pvd": ("Identifiants PVD", lambda b: ", ".join(_last_id_pvd(c) for c in _communes(b))),
    "nb_communes": ("Nombre de communes", lambda b: len(_communes(b))),
    "population": ("Population municipale", lambda b: b.population_totale or 0),
    "cree_le": ("Créé le", lambda b: timezone.localtime(b.created_at).date()),
}
DEFAULT_COLUMNS = [
    "nom",
    "statut",
    "departement_code",
    "departement",
    "epci",
    "communes",
    "codes_insee",
    "population",
]


def rows(queryset, columns: list[str]) -> Iterator[list]:
    for beneficiaire in queryset.iterator(chunk_size=500):
        yield [COLUMNS[c][1](beneficiaire) for c in columns]


def headers(columns: list[str]) -> list[str]:
    return [COLUMNS[c][0] for c in columns]


def response(queryset, fmt: str, asked: list[str], filename: str):
    """The list as CSV or XLSX, with the columns asked (the usual ones when none is known)."""
    columns = [c for c in asked if c in COLUMNS] or DEFAULT_COLUMNS
    respond = csv_response if fmt == "csv" else xlsx_response
    return respond(queryset, columns, filename)


def csv_response(queryset, columns: list[str], filename: str) -> StreamingHttpResponse:
    return spreadsheets.csv_response(headers(columns), rows(queryset, columns), filename)


def xlsx_response(queryset, columns: list[str], filename: str) -> FileResponse:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Bénéficiaires PVD")
    sheet.append(headers(columns))
    for row in rows(queryset, columns):
        sheet.append(spreadsheets.xlsx_row(sheet, row))
    output = tempfile.TemporaryFile()
    workbook.save(output)
    output.seek(0)
    return FileResponse(
        output,
        as_attachment=True,
        filename=f"{filename}.xlsx",
        content_type=spreadsheets.XLSX_CONTENT_TYPE,
    )
