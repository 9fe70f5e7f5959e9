"""CSV/XLSX export of the posts list.

Every cell goes through `table_response`, the one place that writes a spreadsheet for this
app, so it can move to the portal's formula-safe writer without touching anything else.
"""

import csv
import tempfile
from collections.abc import Iterable, Iterator

from django.http import FileResponse, StreamingHttpResponse
from openpyxl import Workbook

from .tableaux import fin_financement

COLUMNS = [
    "Région",
    "Bénéficiaires",
    "Départements",
    "Intitulé",
    "Employeur",
    "SIREN employeur",
    "Type de contrat",
    "ETP",
    "État",
    "Personne en poste",
    "Vacant depuis",
    "Fin du contrat",
    "Fin du financement",
    "Demandé (année)",
    "Notifié (année)",
    "Versé (année)",
    "Reste à verser (année)",
]

# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def rows(postes) -> Iterator[list]:
    yield COLUMNS
    for poste in postes:
        beneficiaires = list(poste.beneficiaires.all())
        yield [
            poste.region_nom or "",
            ", ".join(b.nom for b in beneficiaires),
            ", ".join(sorted({b.departement_id for b in beneficiaires})),
            poste.intitule,
            poste.employeur_nom,
            poste.employeur_siren,
            poste.get_type_contrat_display(),
            poste.etp,
            poste.get_etat_display(),
            poste.personne or "",
            poste.vacant_depuis,
            poste.fin_contrat,
            fin_financement(poste),
            poste.demande,
            poste.notifie,
            poste.verse,
            poste.reste,
        ]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(data: Iterable[list]) -> Iterator[str]:
    yield "\ufeff"  # lets Excel read the file as UTF-8
    writer = csv.writer(_Echo(), delimiter=";")
    for row in data:
        yield writer.writerow(["" if v is None else v for v in row])


def table_response(data: Iterable[list], fmt: str, filename: str, sheet_name: str):
    """The table as a CSV or XLSX download, with user text unable to act as a formula."""
    safe = ([neutralise(v) for v in row] for row in data)
    if fmt == "csv":
        response = StreamingHttpResponse(_csv_lines(safe), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        return response
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_name)
    for row in safe:
        sheet.append(row)
    output = tempfile.TemporaryFile()
    workbook.save(output)
    output.seek(0)
    return FileResponse(
        output,
        as_attachment=True,
        filename=f"{filename}.xlsx",
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
