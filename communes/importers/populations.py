"""Legal populations of the communes, laid out like INSEE's « Populations légales » file.

Semicolon-separated. Only two columns are read, by name: ``COM`` (the 5-character commune
code) and ``PMUN`` (population municipale); the others (``REG``, ``DEP``, ``PCAP``,
``PTOT``, names…) are ignored, whatever their order. Numbers may be written with French
thousands separators: « 1234 », « 1 234 » (space, no-break space or narrow no-break space).

Beware: in some of INSEE's own files, ``COM`` holds the commune's *name* and the code is
split into ``DEP`` + ``CODCOM``; such a file is refused (« code INSEE invalide ») rather
than guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .cog import COMMUNE_CODE
from .csvfile import ImportFileError, quote, read_rows

COLUMNS = ("COM", "PMUN")

# PositiveIntegerField: PostgreSQL's integer.
MAX_POPULATION = 2_147_483_647


@dataclass(frozen=True, slots=True)
class Population:
    code: str
    population: int
    line: int


@dataclass
class PopulationsData:
    path: Path
    populations: dict[str, Population] = field(default_factory=dict)


def parse_populations(path: str | Path) -> PopulationsData:
    """Read and check the whole file; raise :class:`ImportFileError` on the first fault."""
    data = PopulationsData(Path(path))
    for row in read_rows(path, COLUMNS):
        code = row.matching("COM", COMMUNE_CODE, "code INSEE")
        population = row.integer("PMUN", "population municipale")
        if population > MAX_POPULATION:
            raise row.error("PMUN", f"population municipale invalide {quote(row['PMUN'])}")
        if code in data.populations:
            raise row.error(
                "COM",
                f"code INSEE {quote(code)} en double (déjà ligne {data.populations[code].line})",
            )
        data.populations[code] = Population(code, population, row.line)
    if not data.populations:
        raise ImportFileError(
            "aucune ligne de données après l'en-tête", path=path, line=2, column="COM"
        )
    return data
