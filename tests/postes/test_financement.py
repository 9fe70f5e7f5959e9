"""The posts' read-model (postes/financement.py) and the posts' predicates (postes/models.py):
one definition of each, the same in Python and in SQL."""

from datetime import date
from decimal import Decimal

import pytest

from postes import financement
from postes.models import (
    CofinancementAnnee,
    LigneCofinancement,
    Occupation,
    Poste,
    avec_anah,
    cofinancement_finissant,
)
from tests.postes.conftest import occupe

pytestmark = pytest.mark.django_db

# (notifié, versé) → (reste à verser, trop-versé)
CASES = [
    ((30_000, 10_000), (20_000, 0)),
    ((30_000, 30_000), (0, 0)),
    ((20_000, 25_000), (0, 5_000)),  # stored beyond the form's check (import, older rules)
    ((0, 0), (0, 0)),
]


@pytest.mark.parametrize("amounts, expected", CASES)
def test_what_remains_to_pay_is_never_negative_and_an_overrun_is_apart(amounts, expected):
    notifie, verse = (Decimal(v) for v in amounts)
    assert (financement.reste_a_verser(notifie, verse), financement.trop_verse(notifie, verse)) == (
        expected
    )
    ligne = LigneCofinancement(montant_notifie=notifie, montant_verse=verse)
    assert (ligne.reste_a_verser, ligne.trop_verse) == expected


def test_the_lists_sum_in_sql_what_the_page_adds_up_line_by_line(poste_ussel):
    funders = ["anct", "bdt", "etat"]
    for annee, (notifie, verse) in {2022: (30_000, 10_000), 2023: (20_000, 25_000)}.items():
        year = CofinancementAnnee.objects.create(poste=poste_ussel, annee=annee, cout_charge=60_000)
        for financeur in funders:
            LigneCofinancement.objects.create(
                annee=year, financeur=financeur, montant_notifie=notifie, montant_verse=verse
            )
    page = {a.annee.annee: a for a in financement.annees(poste_ussel, None)}
    for year in (2022, 2023):
        listed = financement.with_montants(Poste.objects.filter(pk=poste_ussel.pk), year, None)
        row = listed.get()
        assert (row.notifie, row.verse, row.reste, row.trop_verse) == (
            page[year].notifie,
            page[year].verse,
            page[year].reste,
            page[year].trop_verse,
        )
    assert (page[2023].reste, page[2023].trop_verse) == (0, 15_000)
    # A reader of one funder's lines gets that funder's part, in the page and the list alike.
    (mine,) = financement.annees(poste_ussel, {"bdt"})[:1]
    assert [li.financeur for li in mine.lignes] == ["bdt"]
    assert (mine.reste, mine.trop_verse, mine.depassements) == (0, 5_000, [])


@pytest.mark.parametrize(
    "lignes, expected",
    [
        ([("anah", 10_000, 0)], True),
        ([("anah", 0, 10_000)], True),
        ([("anah", 1, 0)], False),  # a token line: the year stays « sans Anah »
        ([("anah", 0, 0), ("anct", 5, 5)], False),
        ([("bdt", 5, 5)], False),
    ],
)
def test_avec_anah_is_one_rule_for_stored_and_typed_lines(lignes, expected):
    built = [
        LigneCofinancement(financeur=f, montant_demande=d, montant_notifie=n) for f, d, n in lignes
    ]
    assert avec_anah(Decimal(60_000), built) is expected


def test_an_occupation_is_current_from_its_first_day_to_its_last(poste_ussel):
    (lea,) = poste_ussel.occupations.all()  # since 1 September 2021
    jo = occupe(poste_ussel, date(2019, 1, 1), date(2021, 8, 31), prenom="Jo")
    for day, current in (
        (date(2021, 8, 31), [jo]),
        (date(2021, 9, 1), [lea]),
        (date(2018, 12, 31), []),
    ):
        assert list(Occupation.objects.filter(poste=poste_ussel).actuelles(day)) == current
        assert [o for o in poste_ussel.occupations.all() if o.is_actuelle(day)] == current


def test_a_contract_ending_is_announced_ninety_days_ahead_unless_a_departure_is_recorded(
    poste_ussel,
):
    (lea,) = poste_ussel.occupations.all()
    lea.date_fin_contrat = date(2026, 6, 30)
    lea.save()
    for day, announced in (
        (date(2026, 4, 1), True),  # 90 days before
        (date(2026, 3, 31), False),
        (date(2026, 6, 30), True),
        (date(2026, 7, 1), False),
    ):
        assert Occupation.objects.contrats_finissants(day).exists() is announced, day
        assert lea.is_contrat_finissant(day) is announced, day
    lea.date_fin = date(2026, 6, 30)
    lea.save()
    assert not Occupation.objects.contrats_finissants(date(2026, 5, 1)).exists()


def test_a_years_cofinancing_is_announced_ninety_days_before_its_end():
    assert cofinancement_finissant(date(2026, 10, 2))  # 31 December is 90 days away
    assert not cofinancement_finissant(date(2026, 10, 1))
