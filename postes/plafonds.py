"""The co-financing ceiling of a post for a year, pro rata of the months it was filled.

Each month the post was filled (an occupation touches it) is worth a twelfth of the yearly
ceiling of the rule in force on the first of that month: min(rate × loaded cost, yearly cap).
Vacant months are worth nothing. A rule without a funder caps the total of all funders; a
rule with a funder caps that funder's share (the Anah share, the 2021 Banque des Territoires
rule). Whether the Anah contributes chooses between the « avec Anah » and « sans Anah » rules.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from pvd.french import euros

from .models import Financeur, RegleCofinancement, avec_anah

CENT = Decimal("0.01")
MONTHS = [
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
    "octobre", "novembre", "décembre",
]  # fmt: skip


@dataclass
class Tranche:
    """Months of the year under one rule."""

    regle: RegleCofinancement
    mois: int = 0
    montant: Decimal = Decimal("0")

    def explication(self, cout: Decimal) -> str:
        annuel = annual_ceiling(self.regle, cout)
        return (
            f"{self.mois} mois sur 12 de {euros(annuel.quantize(CENT))} par an "
            f"({self.regle.taux.normalize():f} % du coût chargé de {euros(cout)}, plafonné à "
            f"{euros(self.regle.plafond_annuel)} ; « {self.regle.libelle} »)"
        )


@dataclass
class Plafond:
    annee: int
    cout_charge: Decimal
    mois_pourvus: list[int]
    # None: no rule caps the total of the year (only funder rules apply).
    total: Decimal | None
    tranches_total: list[Tranche] = field(default_factory=list)
    par_financeur: dict[str, Decimal] = field(default_factory=dict)
    tranches_financeur: dict[str, list[Tranche]] = field(default_factory=dict)

    @property
    def nb_mois(self) -> int:
        return len(self.mois_pourvus)

    @property
    def parts(self) -> list[tuple[str, Decimal]]:
        return [(Financeur(f).label, m) for f, m in self.par_financeur.items()]

    def mois_vacants(self) -> list[str]:
        return [MONTHS[m - 1] for m in range(1, 13) if m not in self.mois_pourvus]

    def erreurs(self, notifies: dict[str, Decimal]) -> list[str]:
        """French refusals, with the figures, for notified amounts above the ceilings."""
        errors = []
        total = sum(notifies.values(), Decimal("0"))
        if self.total is not None and total > self.total:
            errors.append(
                f"Le total notifié pour {self.annee} ({euros(total)}) dépasse le plafond de "
                f"{euros(self.total)} : {self._pourquoi(self.tranches_total)}."
            )
        for financeur, plafond in self.par_financeur.items():
            montant = notifies.get(financeur, Decimal("0"))
            if montant > plafond:
                errors.append(
                    f"La part {Financeur(financeur).label} notifiée pour {self.annee} "
                    f"({euros(montant)}) dépasse son plafond de {euros(plafond)} : "
                    f"{self._pourquoi(self.tranches_financeur[financeur])}."
                )
        return errors

    def _pourquoi(self, tranches: list[Tranche]) -> str:
        if not tranches:
            return "le poste n'a été pourvu aucun mois de l'année"
        text = " et ".join(t.explication(self.cout_charge) for t in tranches)
        vacants = self.mois_vacants()
        if vacants and self.nb_mois:
            text += f" ; mois non pourvus, non éligibles : {', '.join(vacants)}"
        return text


def annual_ceiling(regle: RegleCofinancement, cout: Decimal) -> Decimal:
    return min(cout * regle.taux / 100, regle.plafond_annuel)


def _latest(regles: list[RegleCofinancement]) -> RegleCofinancement | None:
    return max(regles, key=lambda r: (r.date_debut, r.pk or 0), default=None)


def mois_pourvus(periodes: Iterable[tuple], annee: int) -> list[int]:
    """Months of `annee` that any (start, end) period touches; an open end runs on."""
    months = set()
    for debut, fin in periodes:
        if debut.year > annee or (fin is not None and fin.year < annee):
            continue
        first = debut.month if debut.year == annee else 1
        last = fin.month if fin is not None and fin.year == annee else 12
        months.update(range(first, last + 1))
    return sorted(months)


def calculer_plafond(
    annee: int,
    cout: Decimal,
    mois: list[int],
    regles: Iterable[RegleCofinancement],
    avec_anah: bool,
) -> Plafond:
    regles = [r for r in regles if r.matches(avec_anah)]
    plafond = Plafond(annee=annee, cout_charge=cout, mois_pourvus=list(mois), total=None)
    total = Decimal("0")
    total_capped = True
    totals: dict[int, Tranche] = {}
    funders: dict[str, dict[int, Tranche]] = {}
    for month in mois:
        in_force = [r for r in regles if r.applies_in(annee, month)]
        regle = _latest([r for r in in_force if not r.financeur])
        if regle is None:
            total_capped = False
        else:
            tranche = totals.setdefault(regle.pk or id(regle), Tranche(regle))
            tranche.mois += 1
        for financeur in {r.financeur for r in in_force if r.financeur}:
            regle_f = _latest([r for r in in_force if r.financeur == financeur])
            tranche = funders.setdefault(financeur, {}).setdefault(
                regle_f.pk or id(regle_f), Tranche(regle_f)
            )
            tranche.mois += 1
    for tranche in totals.values():
        tranche.montant = _round(annual_ceiling(tranche.regle, cout) * tranche.mois / 12)
        total += tranche.montant
    if total_capped:
        plafond.total = total
        plafond.tranches_total = list(totals.values())
    for financeur, tranches in funders.items():
        for tranche in tranches.values():
            tranche.montant = _round(annual_ceiling(tranche.regle, cout) * tranche.mois / 12)
        plafond.tranches_financeur[financeur] = list(tranches.values())
        plafond.par_financeur[financeur] = sum((t.montant for t in tranches.values()), Decimal("0"))
    return plafond


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def plafond_stocke(annee) -> Plafond:
    """The ceiling of a stored year of co-financing, from its stored lines."""
    lignes = list(annee.lignes.all())
    return plafond_de(
        annee.poste, annee.annee, annee.cout_charge, avec_anah(annee.cout_charge, lignes)
    )


def plafond_de(poste, annee: int, cout: Decimal, avec_anah: bool) -> Plafond:
    """The ceiling of a post's year, from its occupations and the rules in the database."""
    periodes = [(o.date_debut, o.date_fin) for o in poste.occupations.all()]
    regles = list(RegleCofinancement.objects.en_vigueur(annee))
    return calculer_plafond(annee, cout, mois_pourvus(periodes, annee), regles, avec_anah)
