"""INSEE's Code officiel géographique (COG), « communes » file.

Comma-separated, INSEE column names:
``TYPECOM, COM, REG, DEP, CTCD, ARR, TNCC, NCC, NCCENR, LIBELLE, CAN, COMPARENT``.
Only ``TYPECOM == "COM"`` rows are communes; communes déléguées (COMD), associées (COMA)
and arrondissements municipaux (ARM) are counted as skipped. A ``COMD`` row can carry the
same code as a ``COM`` row (chef-lieu of a commune nouvelle), hence the filter first.

The COG gives the codes of régions and départements, not their names: the names come
from the SIREN file (see :mod:`communes.importers.territoires`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from communes.models import Commune

from .csvfile import ImportFileError, quote, read_rows

COLUMNS = ("TYPECOM", "COM", "REG", "DEP", "LIBELLE")
COMMUNE = "COM"
OTHER_TYPES = {
    "COMD": "communes déléguées",
    "COMA": "communes associées",
    "ARM": "arrondissements municipaux",
}

COMMUNE_CODE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$", re.ASCII)
DEPARTEMENT_CODE = re.compile(r"^(?:\d{2}|2[AB]|97\d)$", re.ASCII)
REGION_CODE = re.compile(r"^\d{2}$", re.ASCII)

NOM_MAX_LENGTH = Commune._meta.get_field("nom").max_length


@dataclass(frozen=True, slots=True)
class CogCommune:
    code: str
    nom: str
    departement: str
    region: str
    line: int


@dataclass
class CogData:
    path: Path
    communes: dict[str, CogCommune] = field(default_factory=dict)
    # Département code -> its région code, and the first line that names it.
    departements: dict[str, str] = field(default_factory=dict)
    departement_lines: dict[str, int] = field(default_factory=dict)
    region_lines: dict[str, int] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def regions(self) -> set[str]:
        return set(self.region_lines)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def parse_cog(path: str | Path) -> CogData:
    """Read and check the whole COG file; raise :class:`ImportFileError` on the first fault."""
    data = CogData(Path(path))
    for row in read_rows(path, COLUMNS):
        typecom = row.required("TYPECOM")
        if typecom != COMMUNE:
            if typecom not in OTHER_TYPES:
                raise row.error(
                    "TYPECOM",
                    f"type de commune inconnu {quote(typecom)} "
                    f"(attendus : COM, {', '.join(OTHER_TYPES)})",
                )
            data.skipped[typecom] += 1
            continue

        code = row.matching("COM", COMMUNE_CODE, "code INSEE")
        departement = row.matching("DEP", DEPARTEMENT_CODE, "code de département")
        region = row.matching("REG", REGION_CODE, "code de région")
        nom = row.text("LIBELLE", NOM_MAX_LENGTH)
        if not code.startswith(departement):
            raise row.error(
                "DEP",
                f"département {quote(departement)} incohérent avec le code INSEE {quote(code)}",
            )
        if code in data.communes:
            raise row.error(
                "COM",
                f"code INSEE {quote(code)} en double (déjà ligne {data.communes[code].line})",
            )
        known_region = data.departements.setdefault(departement, region)
        if known_region != region:
            first = data.departement_lines[departement]
            raise row.error(
                "REG",
                f"le département {quote(departement)} est dans la région {quote(known_region)} "
                f"ligne {first}, pas dans la région {quote(region)}",
            )
        data.departement_lines.setdefault(departement, row.line)
        data.region_lines.setdefault(region, row.line)
        data.communes[code] = CogCommune(code, nom, departement, region, row.line)

    if not data.communes:
        raise ImportFileError(
            "aucune commune (aucune ligne TYPECOM = COM) : ce n'est pas un fichier COG complet",
            path=path,
            line=2,
            column="TYPECOM",
        )
    return data
