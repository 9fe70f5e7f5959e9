"""Read a CSV file of reference data, and say precisely where it is wrong.

Shared by every importer (territoires, ANCT PVD lists, ORT conventions…):

- the file is read as UTF-8, with or without a byte-order mark (``utf-8-sig``), line by
  line so that an encoding error is reported at its line;
- the delimiter is given, or found from the header line (the candidate that yields all
  the required columns);
- required columns are checked by NAME, never by position, so that extra columns or a
  different column order are accepted;
- each row comes with the number of the physical line where its record starts (the
  ``line_num`` of the csv reader, counted before the record is read: a record with a
  multi-line quoted cell is reported at its first line);
- every problem raises :class:`ImportFileError`, whose French message names the file,
  the line and the column, e.g.
  « fichier communes_2024.csv, ligne 12, colonne « COM » : code INSEE invalide « 1A00 » ».
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

CANDIDATE_DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "virgule", ";": "point-virgule", "\t": "tabulation"}

# Spaces that people and spreadsheets use as thousands separators in French numbers.
_NUMBER_SPACES = re.compile(r"[\s\u00a0\u202f]")
_INTEGER = re.compile(r"^\d+$", re.ASCII)
_GROUPED_INTEGER = re.compile(r"^\d{1,3}(?:[ \u00a0\u202f]\d{3})+$", re.ASCII)


def quote(value: object) -> str:
    """« value », the French way of quoting a value in a message."""
    return f"« {value} »"


class ImportFileError(Exception):
    """A file cannot be imported; the message says where (file, line, column) and why."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.column = column
        super().__init__(str(self))

    @property
    def file_name(self) -> str | None:
        return self.path.name if self.path is not None else None

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(f"fichier {self.path.name}")
        if self.line is not None:
            where.append(f"ligne {self.line}")
        if self.column is not None:
            where.append(f"colonne {quote(self.column)}")
        return f"{', '.join(where)} : {self.message}" if where else self.message


class CsvRow:
    """One record of a CSV file: its values by column name and where it comes from.

    The record keeps its fields as the reader gives them, with the header's index of
    column positions shared by every row (a dict per row would double the reading time
    of the national files)."""

    __slots__ = ("path", "line", "fields", "index")

    def __init__(self, path: Path, line: int, fields: list[str], index: dict[str, int]) -> None:
        self.path = path
        self.line = line
        self.fields = fields
        self.index = index

    @property
    def values(self) -> dict[str, str]:
        return {column: self.fields[i] for column, i in self.index.items()}

    def __repr__(self) -> str:
        return f"<CsvRow {self.path.name}:{self.line} {self.values!r}>"

    def __getitem__(self, column: str) -> str:
        """The value of a column, stripped; '' when the column is empty."""
        return self.fields[self.index[column]].strip()

    def get(self, column: str, default: str = "") -> str:
        position = self.index.get(column)
        return default if position is None else self.fields[position].strip()

    def error(self, column: str | None, message: str) -> ImportFileError:
        return ImportFileError(message, path=self.path, line=self.line, column=column)

    def required(self, column: str) -> str:
        """The stripped value of a column that must not be empty."""
        value = self.fields[self.index[column]].strip()
        if not value:
            raise self.error(column, "valeur obligatoire manquante")
        return value

    def matching(
        self, column: str, pattern: re.Pattern[str], what: str, *, required: bool = True
    ) -> str:
        """The value of a column that must match a pattern ('' allowed if not required)."""
        # Called for most cells of the national files: one strip, one match.
        value = self.fields[self.index[column]].strip()
        if value:
            if pattern.match(value) is None:
                raise self.error(column, f"{what} invalide {quote(value)}")
        elif required:
            raise self.error(column, "valeur obligatoire manquante")
        return value

    def integer(
        self, column: str, what: str = "nombre entier", *, required: bool = True
    ) -> int | None:
        """A non-negative integer; accepts « 1234 » and « 1 234 » (French thousands)."""
        value = self.required(column) if required else self[column]
        if not value:
            return None
        if _INTEGER.match(value) or _GROUPED_INTEGER.match(value):
            return int(_NUMBER_SPACES.sub("", value))
        raise self.error(column, f"{what} invalide {quote(value)} : un nombre entier est attendu")

    def text(self, column: str, max_length: int, *, required: bool = True) -> str:
        """A text value no longer than the database column that will hold it."""
        value = self.fields[self.index[column]].strip()
        if not value and required:
            raise self.error(column, "valeur obligatoire manquante")
        if len(value) > max_length:
            raise self.error(
                column, f"valeur trop longue ({len(value)} caractères, {max_length} au plus)"
            )
        return value


def _decoded_lines(handle: BinaryIO, path: Path) -> Iterator[str]:
    """The lines of a file opened in binary mode, decoded one by one.

    Decoding line by line (instead of opening the file in text mode) lets an encoding
    error be reported at its exact line. The byte-order mark that spreadsheets put at the
    start of a UTF-8 file is dropped from the first line (plain ``utf-8`` for the others:
    the ``utf-8-sig`` codec, line by line, is several times slower).
    """
    number = 0
    try:
        for number, raw in enumerate(handle, start=1):
            yield raw.decode("utf-8") if number > 1 else raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            "encodage invalide : le fichier doit être enregistré en UTF-8",
            path=path,
            line=number,
        ) from exc


def _split_header(line: str, delimiter: str) -> list[str]:
    return [name.strip() for name in next(csv.reader([line], delimiter=delimiter), [])]


def _choose_delimiter(header_line: str, required: Sequence[str]) -> str:
    """The candidate that gives all the required columns, else the one that gives most."""

    def score(delimiter: str) -> tuple[int, int]:
        names = _split_header(header_line, delimiter)
        return sum(1 for column in required if column in names), len(names)

    return max(CANDIDATE_DELIMITERS, key=score)


def read_rows(
    path: str | Path,
    required: Sequence[str],
    *,
    delimiter: str | None = None,
) -> Iterator[CsvRow]:
    """Yield the records of a CSV file as :class:`CsvRow`, checking its header first.

    ``required`` are the column names the caller needs; other columns are ignored but
    kept in ``row.values``. ``delimiter=None`` finds it from the header line. Blank lines
    are skipped. A record with more or fewer fields than the header is an error.
    """
    path = Path(path)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise ImportFileError(f"lecture impossible ({exc.strerror or exc})", path=path) from exc
    with handle:
        lines = _decoded_lines(handle, path)
        try:
            header_line = next(lines, "")
        except OSError as exc:  # e.g. a directory on some systems
            raise ImportFileError(f"lecture impossible ({exc.strerror or exc})", path=path) from exc
        if not header_line.strip():
            raise ImportFileError(
                "fichier vide : la ligne d'en-tête est absente "
                f"(colonnes attendues : {', '.join(quote(c) for c in required)})",
                path=path,
                line=1,
                column=required[0] if required else None,
            )
        if delimiter is None:
            delimiter = _choose_delimiter(header_line, required)
        header = _split_header(header_line, delimiter)
        missing = [column for column in required if column not in header]
        if missing:
            raise ImportFileError(
                f"colonne obligatoire absente de l'en-tête "
                f"(manquantes : {', '.join(quote(c) for c in missing)} ; "
                f"séparateur {DELIMITER_NAMES.get(delimiter, quote(delimiter))} ; "
                f"colonnes lues : {', '.join(quote(c) for c in header[:15])}"
                f"{' …' if len(header) > 15 else ''})",
                path=path,
                line=1,
                column=missing[0],
            )
        duplicated = [c for c in required if header.count(c) > 1]
        if duplicated:
            raise ImportFileError(
                "colonne présente plusieurs fois dans l'en-tête",
                path=path,
                line=1,
                column=duplicated[0],
            )

        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        width = len(header)
        index = {column: position for position, column in enumerate(header)}
        # reader.line_num counts the lines the reader consumed: the header is line 1.
        previous = 1
        while True:
            start = previous + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportFileError(
                    f"ligne CSV illisible ({exc})", path=path, line=reader.line_num + 1
                ) from exc
            previous = reader.line_num + 1
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if len(fields) != width:
                if len(fields) < width:
                    column = header[len(fields)]
                    detail = f"{len(fields)} champs au lieu de {width} : ligne incomplète"
                else:
                    column = None
                    detail = f"{len(fields)} champs au lieu de {width} : séparateur en trop ?"
                raise ImportFileError(detail, path=path, line=start, column=column)
            yield CsvRow(path, start, fields, index)
