"""The Excel template of a plan d'action, pre-filled with its fiches (export → edit → import).

Sheets « Fiches », « Financements » and « Indicateurs » (the columns of excel.py, header style,
frozen header, widths, drop-down lists), a « Mode d'emploi » and the hidden « Listes » the
drop-downs read.
"""

from django.db.models import Prefetch
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from communes.models import Beneficiaire
from pvd.french import de
from pvd.spreadsheets import text_cell, xlsx_row

from .excel import (
    CHOIX,
    COLONNES_FICHES,
    COLONNES_FINANCEMENTS,
    COLONNES_INDICATEURS,
    FICHES,
    FINANCEMENTS,
    INDICATEURS,
    Colonne,
    Plan,
    mark_identity,
)
from .models import FicheAction, Indicateur, LigneFinancement
from .plan import fiche_order_key

MODE_EMPLOI = "Mode d'emploi"
# The drop-down values live in a hidden sheet (one column each): a list written in the
# validation itself is limited to 255 characters and cannot hold a comma.
LISTES = "Listes"
TEMPLATE_ROWS = 1_000  # rows covered by the drop-down lists beyond the pre-filled ones
BLEU_FRANCE = "000091"
FORMAT_DATE = "DD/MM/YYYY"
FORMAT_MONTANT = '#,##0.00" €"'
ENTETE_POLICE = Font(bold=True, color="FFFFFF")
ENTETE_FOND = PatternFill("solid", fgColor=BLEU_FRANCE)
ENTETE_ALIGNEMENT = Alignment(wrap_text=True, vertical="center")


def _entetes(feuille, colonnes: list[Colonne]) -> None:
    feuille.append([c.titre for c in colonnes])
    for cell in feuille[1]:
        cell.font = ENTETE_POLICE
        cell.fill = ENTETE_FOND
        cell.alignment = ENTETE_ALIGNEMENT
    feuille.row_dimensions[1].height = 32
    feuille.freeze_panes = "A2"
    for i, colonne in enumerate(colonnes, 1):
        dimension = feuille.column_dimensions[get_column_letter(i)]
        dimension.width = colonne.largeur
        # The column's format applies to the cells typed later: a reference stays a text
        # (« 1.10 » is not the number 1.1), a date shows as a date.
        if colonne.type == "reference":
            dimension.number_format = "@"
        elif colonne.type == "date":
            dimension.number_format = FORMAT_DATE
        elif colonne.type == "montant":
            dimension.number_format = FORMAT_MONTANT


def communes_texte(communes) -> str:
    """« Ussel (19275) ; La Courtine (23067) », as the import reads it back."""
    return " ; ".join(f"{c.nom} ({c.code})" for c in sorted(communes, key=lambda c: c.nom))


def _formats(feuille, colonnes: list[Colonne]) -> None:
    for row in feuille.iter_rows(min_row=2):
        for colonne, cell in zip(colonnes, row, strict=False):
            if colonne.type == "reference":
                cell.number_format = "@"
            elif colonne.type == "date":
                cell.number_format = FORMAT_DATE
            elif colonne.type == "montant":
                cell.number_format = FORMAT_MONTANT
            elif colonne.type == "texte" and colonne.largeur >= 45:
                cell.alignment = Alignment(wrap_text=True, vertical="top")


def _listes(workbook: Workbook, plan: Plan, financeurs: list[str]) -> dict[str, str]:
    """The hidden sheet of drop-down values; returns each list's range."""
    listes = {
        "axe": [str(a) for a in plan.axes],
        **{champ: [label for _, label in choix] for champ, choix in CHOIX.items()},
        "budget_vert": ["oui", "non"],
        "financeur": financeurs,
    }
    feuille = workbook.create_sheet(LISTES)
    feuille.sheet_state = "hidden"
    plages = {}
    for i, (nom, valeurs) in enumerate(listes.items(), 1):
        lettre = get_column_letter(i)
        feuille.cell(row=1, column=i, value=nom)
        for j, valeur in enumerate(valeurs, 2):
            # An axis or a funder named « =… » stays a text (pvd.spreadsheets).
            text_cell(feuille.cell(row=j, column=i), valeur)
        plages[nom] = f"'{LISTES}'!${lettre}$2:${lettre}${len(valeurs) + 1}"
    return plages


def _validations(feuille, colonnes: list[Colonne], plages: dict, derniere: int) -> None:
    for i, colonne in enumerate(colonnes, 1):
        if not colonne.liste:
            continue
        validation = DataValidation(
            type="list",
            formula1=plages[colonne.liste],
            allow_blank=True,
            showErrorMessage=True,
            errorTitle=f"{colonne.titre} : valeur inconnue",
            error="Choisissez une valeur dans la liste.",
            showInputMessage=True,
            promptTitle=colonne.titre[:32],
            prompt=colonne.aide[:255],
        )
        lettre = get_column_letter(i)
        validation.add(f"{lettre}2:{lettre}{derniere}")
        feuille.add_data_validation(validation)


def _ligne_fiche(fiche: FicheAction) -> list:
    return [
        fiche.reference,
        fiche.titre,
        str(fiche.axe),
        fiche.description,
        fiche.objectifs,
        fiche.get_maitre_ouvrage_type_display() if fiche.maitre_ouvrage_type else None,
        fiche.maitre_ouvrage,
        fiche.partenaires,
        fiche.referent,
        fiche.date_debut_prevue,
        fiche.date_fin_prevue,
        fiche.date_debut_reelle,
        fiche.date_fin_reelle,
        fiche.get_maturite_display(),
        fiche.get_avancement_display(),
        fiche.get_priorite_display(),
        "oui" if fiche.budget_vert else "non",
        fiche.cout_total,
        fiche.get_nature_display(),
        fiche.secteur,
        communes_texte(fiche.communes.all()),
        fiche.jalons,
    ]


def _ligne_financement(fiche: FicheAction, ligne: LigneFinancement) -> list:
    return [
        fiche.reference,
        ligne.financeur.nom,
        ligne.dispositif,
        ligne.montant,
        ligne.get_statut_display(),
        ligne.date_decision,
    ]


def _ligne_indicateur(fiche: FicheAction, indicateur: Indicateur) -> list:
    return [
        fiche.reference,
        indicateur.libelle,
        indicateur.get_type_display(),
        indicateur.unite,
        indicateur.cible,
        indicateur.get_frequence_display() if indicateur.frequence else None,
    ]


def template_workbook(beneficiaire: Beneficiaire) -> Workbook:
    """The workbook to fill in, with the plan's fiches and financing lines already in it."""
    plan = Plan(beneficiaire)
    fiches = sorted(
        beneficiaire.fiches.select_related("axe").prefetch_related(
            Prefetch("financements", LigneFinancement.objects.select_related("financeur")),
            "communes",
            "indicateurs",
        ),
        key=fiche_order_key,
    )
    financeurs = [f.nom for f in plan.financeurs if f.actif]
    for fiche in fiches:  # a funder withdrawn from the catalogue but still used
        for ligne in fiche.financements.all():
            if ligne.financeur.nom not in financeurs:
                financeurs.append(ligne.financeur.nom)

    workbook = Workbook()
    feuille_fiches = workbook.active
    feuille_fiches.title = FICHES
    _entetes(feuille_fiches, COLONNES_FICHES)
    for fiche in fiches:
        feuille_fiches.append(xlsx_row(feuille_fiches, _ligne_fiche(fiche)))
    _formats(feuille_fiches, COLONNES_FICHES)

    feuille_financements = workbook.create_sheet(FINANCEMENTS)
    _entetes(feuille_financements, COLONNES_FINANCEMENTS)
    for fiche in fiches:
        for ligne in fiche.financements.all():
            feuille_financements.append(
                xlsx_row(feuille_financements, _ligne_financement(fiche, ligne))
            )
    _formats(feuille_financements, COLONNES_FINANCEMENTS)

    feuille_indicateurs = workbook.create_sheet(INDICATEURS)
    _entetes(feuille_indicateurs, COLONNES_INDICATEURS)
    for fiche in fiches:
        for indicateur in fiche.indicateurs.all():
            feuille_indicateurs.append(
                xlsx_row(feuille_indicateurs, _ligne_indicateur(fiche, indicateur))
            )
    _formats(feuille_indicateurs, COLONNES_INDICATEURS)

    _mode_emploi(workbook.create_sheet(MODE_EMPLOI), beneficiaire)
    plages = _listes(workbook, plan, financeurs)
    _validations(feuille_fiches, COLONNES_FICHES, plages, feuille_fiches.max_row + TEMPLATE_ROWS)
    _validations(
        feuille_financements,
        COLONNES_FINANCEMENTS,
        plages,
        feuille_financements.max_row + TEMPLATE_ROWS,
    )
    _validations(
        feuille_indicateurs,
        COLONNES_INDICATEURS,
        plages,
        feuille_indicateurs.max_row + TEMPLATE_ROWS,
    )
    mark_identity(workbook, beneficiaire)
    workbook.active = 0
    return workbook


def _mode_emploi(feuille, beneficiaire: Beneficiaire) -> None:
    feuille.column_dimensions["A"].width = 28
    feuille.column_dimensions["B"].width = 14
    feuille.column_dimensions["C"].width = 90
    lignes = [
        (f"Plan d'action {de(beneficiaire.nom)} : modèle d'import", "titre"),
        ("", None),
        ("1. La feuille « Fiches » compte une ligne par fiche action.", None),
        (
            "2. La feuille « Financements » compte une ligne par financeur d'une fiche, "
            "reliée à sa fiche par la référence.",
            None,
        ),
        (
            "3. Une fiche du classeur dont la référence existe déjà dans le plan est mise à "
            "jour ; une nouvelle référence crée une fiche. Les fiches du plan absentes du "
            "classeur ne sont ni modifiées ni supprimées.",
            None,
        ),
        (
            "4. Le plan de financement d'une fiche présente dans le classeur est remplacé par "
            "les lignes de la feuille « Financements » : gardez-y toutes ses lignes.",
            None,
        ),
        (
            "5. La feuille « Indicateurs » compte une ligne par indicateur d'une fiche. Un "
            "indicateur de même intitulé sur la fiche est mis à jour (ses mesures sont "
            "gardées) ; un indicateur absent du classeur n'est pas supprimé.",
            None,
        ),
        (
            "6. « Communes concernées » : des communes du bénéficiaire, séparées par « ; » "
            "(nom ou code INSEE). « Jalons » : les étapes de l'action, en texte libre.",
            None,
        ),
        (
            "7. Dates au format JJ/MM/AAAA ; montants en euros, en chiffres "
            "(120000, 120 000,50 ou 120 000 €). Le total des financements d'une fiche ne peut "
            "pas dépasser son coût total HT.",
            None,
        ),
        (
            "8. Si une seule ligne comporte une erreur, rien n'est importé : le portail liste "
            "toutes les erreurs (feuille, ligne, colonne) ; corrigez-les et déposez à nouveau "
            "le classeur.",
            None,
        ),
        ("", None),
        ("Colonne", "entete"),
    ]
    for texte, style in lignes:
        if style == "entete":
            feuille.append(["Feuille et colonne", "Obligatoire", "Contenu"])
            for cell in feuille[feuille.max_row]:
                cell.font = ENTETE_POLICE
                cell.fill = ENTETE_FOND
            continue
        feuille.append(xlsx_row(feuille, [texte]))
        cell = feuille.cell(row=feuille.max_row, column=1)
        if style == "titre":
            cell.font = Font(bold=True, size=14)
    feuilles = (
        (FICHES, COLONNES_FICHES),
        (FINANCEMENTS, COLONNES_FINANCEMENTS),
        (INDICATEURS, COLONNES_INDICATEURS),
    )
    for nom, colonnes in feuilles:
        for colonne in colonnes:
            feuille.append(
                [f"{nom} – {colonne.titre}", "oui" if colonne.obligatoire else "", colonne.aide]
            )
            feuille.cell(row=feuille.max_row, column=3).alignment = Alignment(wrap_text=True)
