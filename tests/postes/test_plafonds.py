"""The ceiling of a year, pro rata of the filled months, under the rules in the database."""

from datetime import date
from decimal import Decimal

from postes.models import RegleCofinancement
from postes.plafonds import plafond_de
from tests.postes.conftest import make_poste, occupe


def test_full_year_is_75_percent_capped_at_45000(ussel_la_courtine, regles):
    poste = make_poste(ussel_la_courtine)
    occupe(poste, date(2022, 9, 1))
    plafond = plafond_de(poste, 2024, Decimal("50000"), avec_anah=False)
    assert plafond.total == Decimal("37500.00")  # 75 % of 50 000
    plafond = plafond_de(poste, 2024, Decimal("70000"), avec_anah=False)
    assert plafond.total == Decimal("45000.00")
    assert plafond.erreurs({"anct": Decimal("30000"), "bdt": Decimal("15000")}) == []
    [error] = plafond.erreurs({"anct": Decimal("30000"), "bdt": Decimal("15000.01")})
    assert "45\u00a0000,01\u00a0€" in error and "45\u00a0000\u00a0€" in error
    assert "12 mois sur 12" in error


def test_partial_year_counts_the_months_from_arrival(ussel_la_courtine, regles):
    poste = make_poste(ussel_la_courtine)
    occupe(poste, date(2024, 4, 15))
    plafond = plafond_de(poste, 2024, Decimal("60000"), avec_anah=False)
    assert plafond.mois_pourvus == list(range(4, 13))
    assert plafond.total == Decimal("33750.00")  # 45 000 × 9 / 12


def test_vacant_months_are_not_eligible(ussel_la_courtine, regles):
    poste = make_poste(ussel_la_courtine)
    occupe(poste, date(2023, 1, 2), date(2024, 3, 15))
    occupe(poste, date(2024, 7, 1), prenom="Léa", nom="Durand")
    plafond = plafond_de(poste, 2024, Decimal("60000"), avec_anah=False)
    assert plafond.nb_mois == 9
    assert plafond.total == Decimal("33750.00")
    [error] = plafond.erreurs({"anct": Decimal("40000")})
    assert "avril, mai, juin" in error
    assert "9 mois sur 12" in error


def test_a_year_without_anyone_in_post_has_no_ceiling_left(ussel_la_courtine, regles):
    poste = make_poste(ussel_la_courtine)
    occupe(poste, date(2022, 1, 1), date(2023, 12, 31))
    plafond = plafond_de(poste, 2024, Decimal("60000"), avec_anah=False)
    assert plafond.total == 0
    [error] = plafond.erreurs({"etat": Decimal("1")})
    assert "aucun mois" in error


def test_anah_raises_the_cap_to_55000_and_caps_its_own_share(ussel_la_courtine, regles):
    poste = make_poste(ussel_la_courtine)
    occupe(poste, date(2022, 1, 1))
    plafond = plafond_de(poste, 2024, Decimal("90000"), avec_anah=True)
    assert plafond.total == Decimal("55000.00")
    assert plafond.par_financeur == {"anah": Decimal("40000.00")}
    assert plafond.erreurs({"anah": Decimal("40000"), "anct": Decimal("15000")}) == []
    errors = plafond.erreurs({"anah": Decimal("41000"), "anct": Decimal("15000")})
    assert len(errors) == 2
    assert "La part Anah notifiée pour 2024 (41\u00a0000\u00a0€)" in errors[1]
    # Half the cost for the Anah: 50 % of 60 000 = 30 000.
    assert plafond_de(poste, 2024, Decimal("60000"), True).par_financeur["anah"] == 30000


def test_rule_change_mid_year_applies_each_rule_to_its_months(ussel_la_courtine, regles):
    poste = make_poste(ussel_la_courtine)
    occupe(poste, date(2022, 1, 1))
    en_vigueur = RegleCofinancement.objects.get(condition="sans_anah")
    en_vigueur.date_fin = date(2025, 6, 30)
    en_vigueur.save()
    RegleCofinancement.objects.create(
        libelle="Nouvelle règle : 75 %, 50 000 € par an",
        condition="sans_anah",
        date_debut=date(2025, 7, 1),
        taux=75,
        plafond_annuel=50000,
        source="Test",
    )
    plafond = plafond_de(poste, 2025, Decimal("80000"), avec_anah=False)
    assert plafond.total == Decimal("47500.00")  # 6/12 × 45 000 + 6/12 × 50 000
    [error] = plafond.erreurs({"anct": Decimal("48000")})
    assert "6 mois sur 12 de 45\u00a0000\u00a0€" in error
    assert "6 mois sur 12 de 50\u00a0000\u00a0€" in error


def test_2021_rule_caps_banque_des_territoires_only(ussel_la_courtine, regles):
    poste = make_poste(ussel_la_courtine)
    occupe(poste, date(2021, 7, 1))
    plafond = plafond_de(poste, 2021, Decimal("60000"), avec_anah=False)
    assert plafond.total is None
    assert plafond.par_financeur == {"bdt": Decimal("7500.00")}  # 15 000 × 6 / 12
