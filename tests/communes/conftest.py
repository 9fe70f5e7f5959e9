"""Small hand-made reference files, written to tmp_path by the tests that need them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.management import call_command

COG_HEADER = [
    "TYPECOM", "COM", "REG", "DEP", "CTCD", "ARR", "TNCC", "NCC", "NCCENR", "LIBELLE", "CAN",
    "COMPARENT",
]  # fmt: skip
SIREN_HEADER = [
    "com_code", "com_siren", "com_name", "epci_siren", "epci_name", "dep_siren", "dep_name",
    "reg_siren", "reg_name", "ept_siren", "ept_name",
]  # fmt: skip
POPULATIONS_HEADER = ["REG", "DEP", "COM", "Commune", "PMUN", "PCAP", "PTOT"]

HCC = ("200066744", "CC Haute-Corrèze Communauté")
NOUVELLE_AQUITAINE = ("200053759", "Nouvelle-Aquitaine")


def cog_row(code: str, reg: str, dep: str, libelle: str, typecom: str = "COM") -> list[str]:
    ncc = libelle.upper()
    return [typecom, code, reg, dep, f"{dep}D", "", "0", ncc, libelle, libelle, "", ""]


def siren_row(code, nom, commune_siren, epci, dep, reg, ept=("", "")) -> list[str]:
    return [code, commune_siren, nom, *epci, *dep, *reg, *ept]


def cog_rows() -> list[list[str]]:
    return [
        cog_row("19275", "75", "19", "Ussel"),
        cog_row("19276", "", "", "Saint-Dézery", typecom="COMD"),
        cog_row("23067", "75", "23", "La Courtine"),
        cog_row("29155", "53", "29", "Ouessant"),
        cog_row("60057", "32", "60", "Beauvais"),
        cog_row("60694", "32", "60", "Les Hauts-Talican"),
        cog_row("2A004", "94", "2A", "Ajaccio"),
    ]


def siren_rows() -> list[list[str]]:
    correze = ("221900018", "Corrèze")
    return [
        siren_row("19275", "Ussel", "211902752", HCC, correze, NOUVELLE_AQUITAINE),
        siren_row("23067", "La Courtine", "212300675", HCC, ("222300010", "Creuse"),
                  NOUVELLE_AQUITAINE),
        siren_row("29155", "Ouessant", "212901557", ("000000000", "Sans objet"),
                  ("222900011", "Finistère"), ("233500016", "Bretagne")),
        siren_row("60057", "Beauvais", "216000578", ("200067999", "CA du Beauvaisis"),
                  ("226000013", "Oise"), ("200053742", "Hauts-de-France")),
        siren_row("2A004", "Ajaccio", "212000046", ("242010056", "CA du Pays Ajaccien"),
                  ("", "Corse-du-Sud"), ("200076958", "Corse")),
        siren_row("75101", "Paris 1er Arrondissement", "217500016",
                  ("200054781", "Métropole du Grand Paris"), ("227500018", "Paris"),
                  ("237500079", "Île-de-France"), ("200057867", "EPT Paris")),
    ]  # fmt: skip


def populations_rows() -> list[list[str]]:
    return [
        ["75", "19", "19275", "Ussel", "9736", "388", "10124"],
        ["75", "23", "23067", "La Courtine", "769", "8", "777"],
        ["94", "2A", "2A004", "Ajaccio", "70 659", "1 000", "71 659"],
        ["84", "01", "01001", "L'Abergement-Clémenciat", "776", "18", "794"],
    ]


def write_csv(
    path: Path, header: list[str], rows: list[list[str]], delimiter: str, quoting=csv.QUOTE_MINIMAL
) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


class Files:
    """Paths of the three files in a directory, rewritten at will by the test."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.cog = self.write_cog(cog_rows())
        self.siren = self.write_siren(siren_rows())
        self.populations = self.write_populations(populations_rows())

    def write_cog(self, rows, header=COG_HEADER, name="communes_2024.csv") -> Path:
        self.cog = write_csv(self.directory / name, header, rows, ",", csv.QUOTE_ALL)
        return self.cog

    def write_siren(self, rows, header=SIREN_HEADER, delimiter=";", name="siren.csv") -> Path:
        self.siren = write_csv(self.directory / name, header, rows, delimiter)
        return self.siren

    def write_populations(self, rows, header=POPULATIONS_HEADER, name="populations.csv") -> Path:
        self.populations = write_csv(self.directory / name, header, rows, ";")
        return self.populations

    def options(self, populations: bool = True) -> dict[str, str]:
        options = {"cog": str(self.cog), "siren": str(self.siren)}
        if populations:
            options["populations"] = str(self.populations)
        return options


@pytest.fixture
def files(tmp_path) -> Files:
    return Files(tmp_path)


@pytest.fixture
def run_import():
    """Run the command; return its standard output."""

    def run(**options) -> str:
        out = io.StringIO()
        call_command("import_territoires", stdout=out, **options)
        return out.getvalue()

    return run
