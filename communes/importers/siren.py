"""Commune ↔ SIREN table: each commune's SIREN, its EPCI, département and région.

Semicolon-separated, one row per commune:
``com_code;com_siren;com_name;epci_siren;epci_name;dep_siren;dep_name;reg_siren;reg_name;
ept_siren;ept_name``. ``com_name`` (only quoted in the report) and the ``ept_*`` columns
(établissements publics territoriaux of the Grand Paris) are not used. ``reg_siren`` is
empty for some overseas rows (Mayotte).

The EPCI SIREN ``000000000`` (named « Sans objet ») is not an EPCI: it marks the island
communes that belong to none (Île-de-Bréhat, Île-de-Sein, Ouessant, L'Île-d'Yeu).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from communes.models import EPCI, Departement, Region

from .cog import COMMUNE_CODE
from .csvfile import ImportFileError, quote, read_rows

COLUMNS = (
    "com_code",
    "com_siren",
    "epci_siren",
    "epci_name",
    "dep_siren",
    "dep_name",
    "reg_siren",
    "reg_name",
)
NO_EPCI_SIREN = "000000000"
SIREN = re.compile(r"^\d{9}$", re.ASCII)

EPCI_NAME_MAX_LENGTH = EPCI._meta.get_field("nom").max_length
DEPARTEMENT_NAME_MAX_LENGTH = Departement._meta.get_field("nom").max_length
REGION_NAME_MAX_LENGTH = Region._meta.get_field("nom").max_length


@dataclass(frozen=True, slots=True)
class SirenRow:
    line: int
    commune_code: str
    commune_name: str  # as written in this file, for the report only
    commune_siren: str
    epci_siren: str | None  # None: the commune belongs to no EPCI (SIREN 000000000)
    epci_name: str
    dep_siren: str
    dep_name: str
    reg_siren: str
    reg_name: str


@dataclass
class SirenData:
    path: Path
    rows: dict[str, SirenRow] = field(default_factory=dict)


def parse_siren(path: str | Path) -> SirenData:
    """Read and check the whole SIREN file; raise :class:`ImportFileError` on the first fault."""
    data = SirenData(Path(path))
    for row in read_rows(path, COLUMNS):
        code = row.matching("com_code", COMMUNE_CODE, "code INSEE")
        if code in data.rows:
            raise row.error(
                "com_code",
                f"code INSEE {quote(code)} en double (déjà ligne {data.rows[code].line})",
            )
        epci_siren = row.matching("epci_siren", SIREN, "SIREN d'EPCI")
        if epci_siren == NO_EPCI_SIREN:
            epci_siren, epci_name = None, row["epci_name"]
        else:
            epci_name = row.text("epci_name", EPCI_NAME_MAX_LENGTH)
        data.rows[code] = SirenRow(
            line=row.line,
            commune_code=code,
            commune_name=row.get("com_name"),
            commune_siren=row.matching("com_siren", SIREN, "SIREN de commune"),
            epci_siren=epci_siren,
            epci_name=epci_name,
            dep_siren=row.matching("dep_siren", SIREN, "SIREN de département", required=False),
            dep_name=row.text("dep_name", DEPARTEMENT_NAME_MAX_LENGTH),
            reg_siren=row.matching("reg_siren", SIREN, "SIREN de région", required=False),
            reg_name=row.text("reg_name", REGION_NAME_MAX_LENGTH),
        )
    if not data.rows:
        raise ImportFileError(
            "aucune ligne de données après l'en-tête", path=path, line=2, column="com_code"
        )
    return data
