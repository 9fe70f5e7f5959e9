"""CSV/XLSX export of the posts list.

Every cell goes through the portal's formula-safe writer (pvd/spreadsheets.py).
"""

from collections.abc import Iterable, Iterator

from pvd import spreadsheets

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
    "Trop-versé (année)",
]


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
            poste.trop_verse,
        ]


def table_response(data: Iterable[list], fmt: str, filename: str, sheet_name: str):
    """The table as a CSV or XLSX download, through the portal's formula-safe writer."""
    data = iter(data)
    header = next(data)
    if fmt == "csv":
        return spreadsheets.csv_response(header, data, filename)
    return spreadsheets.xlsx_response(header, data, filename, sheet_name)
