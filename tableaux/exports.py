"""The dashboards' tables as CSV/XLSX: their columns and rows (the pages' views send them
through postes.exports.table_response, the portal's one writer)."""

from collections.abc import Iterator

from django.utils import timezone

from communes.models import Beneficiaire

from . import lecture


def _money(row: dict, statut: str):
    return row.get(f"m_{statut}", lecture.ZERO)


def inconnue(b) -> str:
    """A lauréat's adhésion date the deadline needs and nobody knows says so in the exports,
    rather than a blank cell read as « nothing due »."""
    if b.statut == Beneficiaire.Statut.LAUREAT and not b.cadre_signee:
        return "inconnue (date d'adhésion à compléter)"
    return ""


def programme_rows(context: dict, level: str) -> list[list]:
    """The programme's figures as shown: beneficiaries of a département, or territories."""
    statuts = lecture.STATUTS.choices
    buckets = lecture.Livraison.choices
    if level == "departement":
        header = ["Bénéficiaire", "Statut", "Fiches", "En retard"]
        header += [label for _, label in buckets] + ["Coût (€)", "Notifié ou versé (€)"]
        header += ["Date d'adhésion"]
        return [header] + [
            [b.nom, b.get_statut_display(), b.nb_fiches, b.nb_retards]
            + [getattr(b, f"nb_{value}") for value, _ in buckets]
            + [b.cout, b.decide]
            + [b.date_adhesion or inconnue(b)]
            for b in context["lignes_beneficiaires"]
        ]
    header = ["Code", "Territoire", "Bénéficiaires", "Fiches", "En retard"]
    header += [label for _, label in buckets] + ["Coût (€)"]
    header += [f"{label} (€)" for _, label in statuts]
    # What the figures cannot count, beside them.
    header += ["Fiches sans date de fin prévue", "Lauréats sans date d'adhésion connue"]
    return [header] + [
        [t.code, t.nom, row.get("nb_beneficiaires", 0), row.get("nb_fiches", 0)]
        + [row.get("nb_retards", 0)]
        + [row.get(f"nb_{value}", 0) for value, _ in buckets]
        + [row.get("cout", lecture.ZERO)]
        + [_money(row, value) for value, _ in statuts]
        + [row.get("nb_sans_fin", 0), row.get("sans_date_adhesion", 0)]
        for t, row in context["lignes_territoires"]
    ]


BENEFICIAIRES_HEADER = [
    "Département",
    "Bénéficiaire",
    "Statut",
    "Adhésion signée le",
    "Convention-cadre signée",
    "Échéance de la convention-cadre",
    "Coût des fiches (€)",
    "Notifié ou versé (€)",
    "Part notifiée ou versée (%)",
    *(label for _, label in lecture.Livraison.choices),
    "Fiches en retard",
    "Dernière mise à jour du plan",
    "Chef de projet en poste",
    "Poste vacant depuis",
]


def beneficiaires_rows(rows, today) -> Iterator[list]:
    """The préfecture's table of beneficiaries (dashboards.prefecture_rows), header first."""
    yield BENEFICIAIRES_HEADER
    for b in rows:
        echeance = lecture.Echeance.of(b, today)
        yield [
            b.departement_id,
            b.nom,
            b.get_statut_display(),
            b.date_adhesion or inconnue(b),
            "oui" if b.cadre_signee else "non",
            echeance.date_limite or inconnue(b),
            b.cout,
            b.decide,
            lecture.part(b.decide, b.cout),
            *(getattr(b, f"nb_{value}") for value, _ in lecture.Livraison.choices),
            b.nb_retards,
            timezone.localtime(b.derniere_maj).date() if b.derniere_maj else None,
            b.chefs_en_poste or "",
            b.vacant_depuis,
        ]
