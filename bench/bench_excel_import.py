"""Benchmark of the plan d'action Excel import (``make bench-excel-import``).

Runs on the database of DATABASE_URL (the make target gives it one of its own and seeds the
demo). Builds, from the template of the demo plan of Ussel – La Courtine, a workbook of
about 180 KB (FICHES fiches action with two financing lines each), then measures in CPU
seconds (``time.process_time``, the median of RUNS runs, so that the shared machine's load
weighs less):

- **raw**: openpyxl's own read-only read of the same file, every row of every sheet;
- **lecture**: the portal's read (``open_workbook``, ``check_identity``, ``read_workbook``:
  every value checked), and its ratio to the raw read;
- **import**: the read then ``apply_import`` (every fiche created, in a transaction rolled
  back at the end), and its ratio to the raw read; then the writing alone (import − read);
- **feuille de lignes vides**: a sheet of about 55 MB of formatted blank rows, refused;
  its CPU time and its ratio to the raw read.

Asserts nothing; prints the figures.
"""

import io
import os
import statistics
import sys
import time
import zipfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
FICHES = 2_000
BLANK_MB = 55


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pvd.settings")
    import django

    django.setup()


def plan_workbook(beneficiaire) -> bytes:
    from actions.excel_template import template_workbook

    workbook = template_workbook(beneficiaire)
    fiches, financements = workbook["Fiches"], workbook["Financements"]
    for sheet in (fiches, financements):
        if sheet.max_row > 1:
            sheet.delete_rows(2, sheet.max_row)
    columns = {s.title: {c.value: c.column for c in s[1]} for s in (fiches, financements)}

    def put(sheet, row: int, values: dict) -> None:
        for header, value in values.items():
            sheet.cell(row=row, column=columns[sheet.title][header], value=value)

    for n in range(1, FICHES + 1):
        put(
            fiches,
            n + 1,
            {
                "Référence": f"9.{n}",
                "Titre": f"Action {n} du plan de revitalisation du centre-bourg",
                "Description": f"Travaux de la tranche {n} : voirie, réseaux et façades.",
                "Axe": 1 + n % 5,
                "Maître d'ouvrage (nom)": "Commune d'Ussel",
                "Début prévu": date(2025, 3, 1),
                "Fin prévue": date(2027, 6, 30),
                "Priorité": "Haute",
                "Coût total HT": 100_000 + n,
            },
        )
        for k, financeur in enumerate(("DSIL", "Région")):
            put(
                financements,
                2 * n + k,
                {"Référence de la fiche": f"9.{n}", "Financeur": financeur, "Montant": 1_000 + n},
            )
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def blank_rows_workbook(content: bytes) -> tuple[bytes, int]:
    """The same workbook, its Fiches sheet followed by ~55 MB of formatted blank rows."""
    cells = "".join(f'<c r="{col}{{n}}" s="1"/>' for col in "ABCDEFGHIJKLMNOPQRS")
    row = f'<row r="{{n}}" spans="1:19">{cells}</row>'
    per_row = len(row.replace("{n}", "100000"))
    rows = "".join(
        row.replace("{n}", str(n)) for n in range(2, 2 + BLANK_MB * 1024 * 1024 // per_row)
    ).encode()
    xml = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>R\xc3\xa9f\xc3\xa9rence</t></is>'
        b"</c></row>" + rows + b"</sheetData></worksheet>"
    )
    output = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(content)) as source,
        zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            data = xml if item.filename == "xl/worksheets/sheet1.xml" else source.read(item)
            target.writestr(item.filename, data)
    return output.getvalue(), len(xml)


def cpu(function) -> float:
    timings = []
    for _ in range(RUNS):
        started = time.process_time()
        function()
        timings.append(time.process_time() - started)
    return statistics.median(timings)


def main() -> None:
    setup_django()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.db import transaction
    from openpyxl import load_workbook

    from actions.excel import FichierRefuse, apply_import, check_identity, open_workbook
    from actions.excel import read_workbook as read
    from communes.models import Beneficiaire
    from pvd.models import User

    with open(os.devnull, "w") as devnull:
        call_command("seed_demo", stdout=devnull)
    beneficiaire = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    user = User.objects.filter(email="cdp-ussel@demo.pvd.fr").first()
    content = plan_workbook(beneficiaire)
    size = len(content) // 1024
    print(f"Classeur : {FICHES} fiches, {2 * FICHES} lignes de financement, {size} Kio")

    def raw() -> None:
        workbook = load_workbook(io.BytesIO(content), read_only=True)
        for sheet in workbook.worksheets:
            for _ in sheet.iter_rows(values_only=True):
                pass
        workbook.close()

    def lecture(data: bytes = content):
        workbook = open_workbook(SimpleUploadedFile("plan.xlsx", data))
        check_identity(workbook, beneficiaire)
        return read(workbook, beneficiaire)

    def full_import() -> None:
        result = lecture()
        assert not result.erreurs, result.erreurs[:3]
        with transaction.atomic():
            apply_import(result, beneficiaire, user)
            transaction.set_rollback(True)

    base = cpu(raw)
    print(f"Lecture brute openpyxl (lecture seule) : {base * 1000:.0f} ms de CPU")
    read_s = cpu(lecture)
    print(f"Lecture du portail : {read_s * 1000:.0f} ms de CPU, {read_s / base:.1f} × la brute")
    import_s = cpu(full_import)
    print(f"Import complet : {import_s * 1000:.0f} ms de CPU, {import_s / base:.1f} × la brute")
    write_s = import_s - read_s
    print(f"dont l'écriture : {write_s * 1000:.0f} ms de CPU, {write_s / base:.1f} × la brute")

    blank, inflated = blank_rows_workbook(content)

    def refused() -> None:
        try:
            errors = lecture(blank).erreurs
        except FichierRefuse as error:
            errors = [error]
        assert errors, "la feuille de lignes vides n'est pas refusée"

    blank_s = cpu(refused)
    print(
        f"Feuille de {inflated / 1024 / 1024:.0f} Mo de lignes vides ({len(blank) // 1024} Kio) : "
        f"refusée en {blank_s * 1000:.0f} ms de CPU, {blank_s / base:.1f} × la lecture brute"
    )


if __name__ == "__main__":
    main()
