"""One beneficiary, put through every place that shows it: they all tell the same story.

Ussel – La Courtine has four fiches — abandoned, over-financed, late and delivered — a post
vacant since January whose 2025 co-financing was paid beyond what the Banque des Territoires
notified, and a convention-cadre ending within six months. The plan page, the fiche pages,
the élu's, préfecture's, national and partner's dashboards, the bilan PDF, the convention's
annex, the map, the CSV/XLSX exports and the reminders must agree on each figure: the rules
live in one place each (actions/plan.py, postes/financement.py, the apps' predicates).
"""

import csv
import html
import io
from datetime import date
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import strip_tags
from openpyxl import load_workbook
from pypdf import PdfReader

from actions.models import FicheAction, Financeur, LigneFinancement, ensure_axes
from carte.geo import ETATS
from conventions import pdf
from conventions.models import Convention
from postes.models import CofinancementAnnee, LigneCofinancement, Occupation, Poste
from rappels.regles import due_today
from tableaux import bilan
from tests.postes.conftest import make_poste

pytestmark = pytest.mark.django_db

# What the plan adds up to, abandoned fiche apart: B + C + D.
COUT, FINANCE, RESTE = 210_000, 200_000, 10_000
PREVU, NOTIFIE, VERSE = 20_000, 80_000, 100_000  # by status, abandoned fiche left out
ABANDONNEES, COUT_ABANDONNE = 1, 40_000


def text(content: str | bytes) -> str:
    """The page as a reader sees it: no tags, entities decoded, one space between words."""
    if isinstance(content, bytes):
        content = content.decode()
    content = html.unescape(strip_tags(content))
    return " ".join(content.replace("\xa0", " ").replace("\u202f", " ").split())


def body(response) -> bytes:
    assert response.status_code == 200
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def csv_rows(response) -> list[dict]:
    header, *rows = csv.reader(io.StringIO(body(response).decode("utf-8-sig")), delimiter=";")
    return [dict(zip(header, row, strict=True)) for row in rows]


def xlsx_rows(response) -> list[dict]:
    sheet = load_workbook(io.BytesIO(body(response))).active
    header, *rows = sheet.iter_rows(values_only=True)
    return [dict(zip(header, row, strict=True)) for row in rows]


def fiche(beneficiaire, axe: int, reference: str, cout: int, lignes, **fields) -> FicheAction:
    created = FicheAction.objects.create(
        beneficiaire=beneficiaire,
        axe=beneficiaire.axes.get(numero=axe),
        reference=reference,
        titre=f"Fiche {reference}",
        cout_total=cout,
        **fields,
    )
    for nom, montant, statut in lignes:
        LigneFinancement.objects.create(
            fiche=created, financeur=Financeur.objects.get(nom=nom), montant=montant, statut=statut
        )
    return created


@pytest.fixture
def ville(ussel_la_courtine, today):
    b = ussel_la_courtine
    ensure_axes(b)
    fiches = {
        "abandonnee": fiche(
            b,
            1,
            "1.1",
            40_000,
            [("DSIL", 10_000, "notifie"), ("Banque des Territoires", 10_000, "notifie")],
            maturite="abandonnee",
            date_fin_prevue=date(2026, 3, 1),
        ),
        "surfinancee": fiche(
            b,
            1,
            "1.2",
            100_000,
            [("DSIL", 80_000, "notifie"), ("Banque des Territoires", 50_000, "verse")],
            maturite="engagee",
        ),
        "en_retard": fiche(
            b,
            2,
            "2.1",
            60_000,
            [("Banque des Territoires", 20_000, "prevu")],
            maturite="maturation",
            date_debut_prevue=date(2025, 1, 1),
            date_fin_prevue=date(2026, 3, 6),
        ),
        "livree": fiche(
            b,
            2,
            "2.2",
            50_000,
            [("DETR", 50_000, "verse")],
            maturite="livree",
            date_fin_prevue=date(2026, 3, 2),
        ),
    }
    poste = make_poste(b, etat=Poste.Etat.VACANT, vacant_depuis=date(2026, 1, 10))
    Occupation.objects.create(
        poste=poste,
        prenom="Léa",
        nom="Durand",
        email="lea.durand@example.fr",
        date_debut=date(2024, 1, 1),
        date_fin=date(2026, 1, 9),
    )
    annee = CofinancementAnnee.objects.create(poste=poste, annee=2025, cout_charge=60_000)
    # The Banque des Territoires paid 5 000 € beyond its notification; the ANCT owes 10 000 €.
    for financeur, notifie, verse in (("bdt", 20_000, 25_000), ("anct", 15_000, 5_000)):
        LigneCofinancement.objects.create(
            annee=annee,
            financeur=financeur,
            montant_demande=notifie,
            montant_notifie=notifie,
            date_notification=date(2025, 3, 1),
            montant_verse=verse,
        )
    cadre = Convention.objects.create(
        beneficiaire=b,
        type=Convention.Type.CADRE,
        titre="Convention-cadre",
        statut=Convention.Statut.SIGNEE,
        date_signature=date(2021, 9, 18),
        date_entree_vigueur=date(2021, 9, 18),
        date_fin=date(2026, 9, 13),  # within six months: announced from 13 March
    )
    return b, fiches, poste, cadre


def test_plan_page_and_fiche_pages(client_for, cdp_ussel, ville):
    b, fiches, *_ = ville
    client = client_for(cdp_ussel)
    response = client.get(reverse("actions:plan", args=[b.pk]))
    totals = response.context["plan"].totals
    assert (totals["nb_fiches"], totals["cout"], totals["finance"], totals["reste"]) == (
        3,
        COUT,
        FINANCE,
        RESTE,
    )
    assert (totals["nb_abandonnees"], totals["cout_abandonne"]) == (ABANDONNEES, COUT_ABANDONNE)
    plan = text(body(response))
    assert "3 fiches action et 1 fiche abandonnée (coût 40 000 €), hors totaux" in plan
    assert "210 000 € coût total" in plan and "200 000 € de financements" in plan
    assert "10 000 € reste à financer" in plan
    assert response.context["plan"].totaux_statut == [PREVU, 0, NOTIFIE, VERSE]

    def fiche_page(name: str) -> str:
        return text(body(client.get(reverse("actions:fiche", args=[fiches[name].pk]))))

    assert "Le plan de financement dépasse le coût de 30 000 €." in fiche_page("surfinancee")
    assert "En retard" in fiche_page("en_retard")
    assert "En retard" not in fiche_page("abandonnee")  # its planned end passed: it is not late
    assert "En retard" not in fiche_page("livree")


def test_elu_dashboard_and_bilan(client_for, elu_ussel, ville, today):
    b, *_ = ville
    page = text(body(client_for(elu_ussel).get(reverse("portail:home"))))
    assert (
        "Coût total des fiches : 210 000 € (3 fiches, hors 1 abandonnée d’un coût de 40 000 €)."
        in page
    )
    assert "20 000 € Prévu" in page and "80 000 € Notifié" in page and "100 000 € Versé" in page
    assert "Fiches en retard (1)" in page and "Fiche 2.1" in page
    assert "vacant depuis le 10 janvier 2026" in page
    assert "13 septembre 2026" in page  # the convention-cadre ending soon

    reader = PdfReader(io.BytesIO(bilan.render_bilan(b, today)))
    report = text(" ".join(p.extract_text() for p in reader.pages))
    cout = "Coût total des fiches : 210 000 € (3 fiches, hors 1 abandonnée d’un coût de 40 000 €)"
    assert cout in report
    assert "Fiches en retard (1)" in report
    assert "Fiche 2.1 (en retard)" in report and "Fiche 2.2 (en retard)" not in report
    assert "Fiche 1.1" not in report  # the abandoned fiche is in no bucket
    assert "Poste vacant depuis le 10 janvier 2026" in report


def test_prefecture_and_national_figures(client_for, prefecture_19, national, ville, today):
    b, *_ = ville
    client = client_for(prefecture_19)
    response = client.get(reverse("portail:home"))
    row = next(r for r in response.context["prefecture"]["rows"] if r.pk == b.pk)
    assert (row.nb_fiches, row.cout, row.decide, row.nb_retards, row.nb_livree) == (
        3,
        COUT,
        NOTIFIE + VERSE,
        1,
        1,
    )
    assert row.vacant_depuis == date(2026, 1, 10)
    (correze,) = [t for d, t in response.context["totaux_departements"] if d.code == "19"]
    assert (correze["nb_fiches"], correze["cout"], correze["nb_retards"]) == (3, COUT, 1)
    assert [correze[f"m_{s}"] for s in ("prevu", "sollicite", "notifie", "verse")] == [
        PREVU,
        0,
        NOTIFIE,
        VERSE,
    ]

    exported = next(
        r
        for r in csv_rows(client.get(reverse("tableaux:beneficiaires-export", args=["csv"])))
        if r["Bénéficiaire"] == b.nom
    )
    assert (exported["Coût des fiches (€)"], exported["Notifié ou versé (€)"]) == (
        "210000,00",
        "180000,00",
    )
    assert exported["Part notifiée ou versée (%)"] == "86,00"  # 180 000 / 210 000
    assert (exported["Fiches en retard"], exported["Livrée"]) == ("1", "1")
    assert exported["Poste vacant depuis"] == "2026-01-10"

    national_client = client_for(national)
    response = national_client.get(reverse("tableaux:departement", args=["19"]))
    (row,) = [r for r in response.context["lignes_beneficiaires"] if r.pk == b.pk]
    assert (row.nb_fiches, row.cout, row.decide, row.nb_retards) == (3, COUT, NOTIFIE + VERSE, 1)
    response = national_client.get(reverse("tableaux:france"))
    chiffres = response.context["chiffres"]
    assert (chiffres.nb_fiches, chiffres.cout, chiffres.nb_retards) == (3, COUT, 1)
    assert [amount for *_, amount in chiffres.montants] == [PREVU, 0, NOTIFIE, VERSE]
    assert chiffres.postes_vacants == 1
    page = text(body(response))
    assert "3 actions suivies (hors abandonnées), dont 1 en retard et " in page, page[:3000]
    assert "(retard incalculable) ; coût total 210 000 €" in page
    # The national export, by région: the Nouvelle-Aquitaine holds Ussel's plan.
    (region,) = [
        r
        for r in xlsx_rows(national_client.get(reverse("tableaux:france"), {"format": "xlsx"}))
        if r["Territoire"] == "Nouvelle-Aquitaine"
    ]
    assert (region["Fiches"], region["En retard"], region["Coût (€)"]) == (3, 1, COUT)
    assert [region[f"{label} (€)"] for label in ("Prévu", "Sollicité", "Notifié", "Versé")] == [
        PREVU,
        0,
        NOTIFIE,
        VERSE,
    ]


def test_partner_follows_its_own_money_only(client_for, partenaire, ville):
    page = text(body(client_for(partenaire).get(reverse("portail:home"))))
    # Banque des Territoires: 20 000 planned (2.1), 50 000 paid (1.2); not the 10 000 notified
    # on the abandoned fiche.
    assert "Nouvelle-Aquitaine20 000 €0 €0 €50 000 €" in page


def test_convention_annex(ville):
    b, _, _, cadre = ville
    fiches = pdf.annex_fiches(cadre)
    context = pdf.convention_context(cadre, fiches)
    maquette = context["maquette"]
    assert [f.reference for f in fiches] == ["1.2", "2.1", "2.2"]
    assert (maquette["cout_total"], maquette["total_finance"], maquette["reste"]) == (
        COUT,
        FINANCE,
        RESTE,
    )
    annex = text(render_to_string("conventions/pdf/annexe_plan_action.html", context))
    assert (
        "Le plan d'action comprend 3 fiches action ; 1 fiche abandonnée, d'un coût de 40 000 €, "
        "n'y figure pas." in annex
    )


def test_map(client_for, elu_ussel, national, ville):
    b, *_ = ville
    for user, expected in (
        (elu_ussel, {"Ussel": "signee"}),  # the élu's perimeter: Ussel only
        (national, {"Ussel": "signee", "La Courtine": "signee"}),
    ):
        data = client_for(user).get(reverse("carte:geojson")).json()
        communes = {
            f["properties"]["nom"]: ETATS[f["properties"]["etat"]]
            for f in data["features"]
            if f["properties"]["couche"] == "commune" and f["properties"]["beneficiaire"] == b.nom
        }
        assert communes == {nom: "Convention-cadre signée" for nom in expected}


def test_plan_exports(client_for, cdp_ussel, ville):
    b, fiches, *_ = ville
    client = client_for(cdp_ussel)
    for fmt, read, money in (("csv", csv_rows, lambda v: Decimal(v.replace(",", "."))),
                             ("xlsx", xlsx_rows, Decimal)):  # fmt: skip
        rows = read(client.get(reverse("actions:export", kwargs={"pk": b.pk, "format": fmt})))
        by_ref = {row["Référence"]: row for row in rows}
        assert by_ref["1.1"]["Maturité"] == "Abandonnée"  # listed, with its own figures
        counted = [row for row in rows if row["Maturité"] != "Abandonnée"]
        assert sum(money(row["Coût total HT (€)"]) for row in counted) == COUT
        assert sum(money(row["Total financé (€)"]) for row in counted) == FINANCE
        assert money(by_ref["1.2"]["Dépassement (€)"]) == 30_000


def test_post_page_lists_and_exports_agree_on_what_remains_to_pay(
    client_for, prefecture_19, partenaire, ville
):
    _, _, poste, _ = ville
    # Every line (préfecture), then the partner's own (Banque des Territoires).
    for user, notifie, verse, reste, trop_verse in (
        (prefecture_19, 35_000, 30_000, 10_000, 5_000),
        (partenaire, 20_000, 25_000, 0, 5_000),
    ):
        client = client_for(user)
        response = client.get(reverse("postes:detail", args=[poste.pk]))
        (annee,) = response.context["annees"]
        assert (annee.notifie, annee.verse, annee.reste, annee.trop_verse) == (
            notifie,
            verse,
            reste,
            trop_verse,
        )
        assert f"trop-versé : {trop_verse:,} €".replace(",", " ") in text(body(response))

        listed = client.get(reverse("postes:list"), {"annee": 2025})
        assert [(t.notifie, t.verse, t.reste, t.trop_verse) for t in listed.context["totaux"]] == (
            [(notifie, verse, reste, trop_verse)]
            if user == partenaire
            else [(15_000, 5_000, 10_000, 0), (20_000, 25_000, 0, 5_000)]  # ANCT, BdT
        )
        (row,) = [
            r
            for r in csv_rows(client.get(reverse("postes:list"), {"annee": 2025, "export": "csv"}))
            if r["Intitulé"] == poste.intitule
        ]
        assert (
            row["Notifié (année)"],
            row["Versé (année)"],
            row["Reste à verser (année)"],
            row["Trop-versé (année)"],
        ) == tuple(f"{v},00" for v in (notifie, verse, reste, trop_verse))
        (row,) = [
            r
            for r in xlsx_rows(
                client.get(reverse("postes:list"), {"annee": 2025, "export": "xlsx"})
            )
            if r["Intitulé"] == poste.intitule
        ]
        assert (
            row["Notifié (année)"],
            row["Versé (année)"],
            row["Reste à verser (année)"],
            row["Trop-versé (année)"],
        ) == (notifie, verse, reste, trop_verse)


def test_reminders(ville, today):
    b, fiches, poste, cadre = ville
    due = {(e.regle, e.objet) for e in due_today(today) if e.beneficiaire_id == b.pk}
    assert due == {
        ("fiche_en_retard", f"fiche:{fiches['en_retard'].pk}"),  # not the abandoned, delivered
        ("poste_vacant", f"poste:{poste.pk}"),
        ("fin_de_convention", f"convention:{cadre.pk}"),
    }
