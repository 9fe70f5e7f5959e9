"""The plan read-model (actions/plan.py): one definition of each figure, used everywhere."""

import csv
import html
import io
from decimal import Decimal
from itertools import product

import pytest
from django.template.defaultfilters import floatformat
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.html import strip_tags
from openpyxl import load_workbook

from actions.models import FicheAction, Financeur, LigneFinancement, ensure_axes
from actions.plan import (
    Livraison,
    fiches_with_totals,
    livraison,
    livraison_case,
    livraison_counts,
    reference_key,
    reference_order,
    reste_et_depassement,
)
from conventions import pdf
from conventions.models import Convention
from pvd.french import euros

pytestmark = pytest.mark.django_db


def text(content: str) -> str:
    content = html.unescape(strip_tags(content))
    return " ".join(content.replace("\xa0", " ").replace("\u202f", " ").split())


def make_fiche(beneficiaire, reference: str, cout=None, lignes=(), **fields) -> FicheAction:
    ensure_axes(beneficiaire)
    fiche = FicheAction.objects.create(
        beneficiaire=beneficiaire,
        axe=beneficiaire.axes.get(numero=fields.pop("axe", 1)),
        reference=reference,
        titre=fields.pop("titre", f"Fiche {reference}"),
        cout_total=cout,
        **fields,
    )
    for nom, montant in lignes:
        LigneFinancement.objects.create(
            fiche=fiche, financeur=Financeur.objects.get(nom=nom), montant=montant
        )
    return fiche


# Reference ordering ---------------------------------------------------------------------------


def test_references_sort_the_same_in_python_and_in_sql(ussel_la_courtine):
    references = ["1.10", "1.2", "10.1", "2.b", "1.9", "2.a", "2-c", "1.2bis", "A"]
    for reference in references:
        make_fiche(ussel_la_courtine, reference)

    in_sql = list(
        ussel_la_courtine.fiches.order_by(*reference_order()).values_list("reference", flat=True)
    )

    assert sorted(references, key=reference_key) == in_sql
    assert in_sql[:5] == ["A", "1.2", "1.2bis", "1.9", "1.10"]
    assert in_sql[-1] == "10.1"


# Reste à financer, dépassement ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cout", "finance", "expected"),
    [
        (Decimal("100"), Decimal("30"), (Decimal("70"), Decimal("0"))),
        (Decimal("100"), Decimal("130"), (Decimal("0"), Decimal("30"))),
        (Decimal("100"), Decimal("100"), (Decimal("0"), Decimal("0"))),
        (None, Decimal("50"), (None, None)),
    ],
)
def test_reste_and_depassement_agree_in_python_and_in_sql(
    ussel_la_courtine, cout, finance, expected
):
    fiche = make_fiche(ussel_la_courtine, "1.1", cout, [("DSIL", finance)])

    annotated = fiches_with_totals(FicheAction.objects.filter(pk=fiche.pk)).get()

    assert reste_et_depassement(cout, finance) == expected
    assert (annotated.reste, annotated.depassement) == expected


# Delivery buckets -------------------------------------------------------------------------------


def test_every_maturity_and_stage_falls_in_the_same_bucket_in_python_and_in_sql(
    ussel_la_courtine,
):
    combinations = list(product(FicheAction.Maturite.values, FicheAction.Avancement.values))
    for i, (maturite, avancement) in enumerate(combinations):
        make_fiche(ussel_la_courtine, f"1.{i}", maturite=maturite, avancement=avancement)

    fiches = ussel_la_courtine.fiches.annotate(bucket=livraison_case())

    assert len(fiches) == len(combinations)
    for fiche in fiches:
        assert fiche.bucket == livraison(fiche), (fiche.maturite, fiche.avancement)


@pytest.mark.parametrize(
    ("maturite", "avancement", "bucket"),
    [
        ("idee", "non_commencee", Livraison.NON_DEMARREE),
        ("maturation", "non_commencee", Livraison.EN_ETUDE),
        ("idee", "etude", Livraison.EN_ETUDE),
        ("prete", "demarrage", Livraison.ENGAGEE),
        ("engagee", "etude", Livraison.ENGAGEE),
        ("engagee", "achevee", Livraison.LIVREE),
        ("livree", "operationnelle", Livraison.LIVREE),
        ("abandonnee", "operationnelle", None),
    ],
)
def test_delivery_bucket_of_a_fiche(maturite, avancement, bucket):
    assert livraison(FicheAction(maturite=maturite, avancement=avancement)) == bucket


def test_delivery_buckets_are_counted_in_one_query(ussel_la_courtine, django_assert_num_queries):
    make_fiche(ussel_la_courtine, "1.1", maturite="livree")
    make_fiche(ussel_la_courtine, "1.2", maturite="engagee")
    make_fiche(ussel_la_courtine, "1.3", avancement="operationnelle")
    make_fiche(ussel_la_courtine, "1.4", maturite="abandonnee")
    make_fiche(ussel_la_courtine, "1.5")

    with django_assert_num_queries(1):
        counts = livraison_counts(ussel_la_courtine.fiches.all())

    assert counts == {"livree": 1, "engagee": 2, "en_etude": 0, "non_demarree": 1}


# The same over-financed fiche on the plan page, the fiche page, the exports and the annex ------


@pytest.fixture
def surfinancee(ussel_la_courtine):
    """Cost 100 000 €, financed 130 000 €: nothing left to finance, 30 000 € beyond."""
    return make_fiche(
        ussel_la_courtine,
        "1.1",
        Decimal("100000"),
        [("DSIL", Decimal("80000")), ("Région", Decimal("50000"))],
        titre="Halle couverte",
        maturite="engagee",
    )


def test_an_over_financed_fiche_reads_the_same_on_pages_exports_and_annex(
    client_for, cdp_ussel, surfinancee
):
    client = client_for(cdp_ussel)
    beneficiaire = surfinancee.beneficiaire

    plan_page = text(client.get(reverse("actions:plan", args=[beneficiaire.pk])).content.decode())
    assert "30 000 € de financements au-delà du coût" in plan_page
    assert "coût 100 000 € · financements 130 000 € · 30 000 € au-delà du coût" in plan_page

    fiche_page = text(client.get(reverse("actions:fiche", args=[surfinancee.pk])).content.decode())
    assert "Le plan de financement dépasse le coût de 30 000 €." in fiche_page
    assert "reste à financer" not in fiche_page

    response = client.get(
        reverse("actions:export", kwargs={"pk": beneficiaire.pk, "format": "csv"})
    )
    content = b"".join(response.streaming_content).decode("utf-8-sig")
    header, row = list(csv.reader(io.StringIO(content), delimiter=";"))
    exported = dict(zip(header, row, strict=True))
    assert exported["Total financé (€)"] == "130000,00"
    assert (exported["Reste à financer (€)"], exported["Dépassement (€)"]) == ("0,00", "30000,00")

    response = client.get(
        reverse("actions:export", kwargs={"pk": beneficiaire.pk, "format": "xlsx"})
    )
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)))["Fiches action"]
    header, row = list(sheet.iter_rows(values_only=True))
    exported = dict(zip(header, row, strict=True))
    assert (exported["Reste à financer (€)"], exported["Dépassement (€)"]) == (0, 30000)

    fiches = pdf.annex_fiches(Convention(beneficiaire=beneficiaire))
    maquette = pdf.maquette_financiere(fiches)
    assert (maquette["lignes"][0]["reste"], maquette["lignes"][0]["depassement"]) == (0, 30000)
    annex = text(
        render_to_string(
            "conventions/pdf/annexe_plan_action.html", {"fiches": fiches, "maquette": maquette}
        )
    )
    assert "dépassement de 30 000" in annex


@pytest.mark.parametrize(
    "montant",
    [0, 300000, Decimal("1234.5"), Decimal("-1234.567"), 12.005, Decimal("0.004"), "12",
     Decimal("1E+3"), Decimal("-0.004"), Decimal("2.675"), 999999999999.99, -7],
)  # fmt: skip
def test_euros_writes_amounts_as_floatformat_did(montant):
    with translation.override("fr"):
        assert euros(montant) == f"{floatformat(montant, '-2g')}\u00a0€"


# A fiche « finie » and « en retard »: one rule, in SQL and in Python ---------------------------


def test_late_and_finished_fiches_agree_in_sql_and_python(ussel_la_courtine):
    from datetime import date

    day = date(2026, 3, 16)
    combos = list(product(FicheAction.Maturite.values, FicheAction.Avancement.values))
    for n, (maturite, avancement) in enumerate(combos):
        make_fiche(
            ussel_la_courtine,
            f"9.{n}",
            maturite=maturite,
            avancement=avancement,
            date_fin_prevue=date(2026, 3, 15) if n % 2 else date(2026, 3, 16),
        )
    fiches = FicheAction.objects.filter(beneficiaire=ussel_la_courtine)
    late = set(fiches.en_retard(day).values_list("pk", flat=True))
    finies = set(fiches.finies().values_list("pk", flat=True))
    assert late == {f.pk for f in fiches if f.is_en_retard(day)}
    assert finies == {f.pk for f in fiches if f.is_finie}
    # Late: planned to end before the day (not on it), neither delivered, abandoned nor achieved.
    assert {(f.maturite, f.avancement) for f in fiches if f.pk in late} == {
        (m, a)
        for n, (m, a) in enumerate(combos)
        if n % 2 and m not in ("livree", "abandonnee") and a != "achevee"
    }
