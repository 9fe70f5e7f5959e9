"""« Télécharger le bilan »: a dated PDF made by the job protocol, kept as generated."""

import base64
import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from actions.models import FicheAction
from tableaux.models import Bilan
from tests.actions.test_plan_readmodel import make_fiche
from tests.tableaux.test_dashboards import fill, page

pytestmark = pytest.mark.django_db


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return " ".join(" ".join(p.extract_text().split()) for p in reader.pages)


def download(client, bilan: Bilan) -> bytes:
    response = client.get(reverse("tableaux:bilan", args=[bilan.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    return b"".join(response.streaming_content)


def test_elu_downloads_a_dated_report_that_does_not_change_later(
    client_for, elu_ussel, ussel_la_courtine, django_capture_on_commit_callbacks
):
    fill(ussel_la_courtine, 5, "1", "111")
    client = client_for(elu_ussel)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("tableaux:bilan-request", args=[ussel_la_courtine.pk]))
    assert response.status_code == 302
    bilan = Bilan.objects.get()
    assert bilan.statut == Bilan.Statut.PRET and bilan.requested_by == elu_ussel
    first = download(client, bilan)
    text = pdf_text(first)
    assert "Bilan du plan d’action – Ussel – La Courtine" in text
    assert "Livrée (1)" in text and "Non démarrée (1)" in text
    assert "1.0" in text  # a fiche listed in its bucket
    # Listed on the dashboard, with who asked.
    assert "demandé par" in page(client, reverse("portail:home"))
    # The plan changes: the old report stays as it was, a new one shows the change.
    make_fiche(ussel_la_courtine, "9.9", titre="Nouvelle halle", maturite=FicheAction.Maturite.IDEE)
    assert download(client, bilan) == first
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("tableaux:bilan-request", args=[ussel_la_courtine.pk]))
    newer = Bilan.objects.exclude(pk=bilan.pk).get()
    assert "Nouvelle halle" in pdf_text(download(client, newer))
    assert "Nouvelle halle" not in pdf_text(download(client, bilan))


def test_another_territory_and_read_only_roles_get_no_report(
    client_for, elu_ussel, partenaire, prefecture_36, ussel_la_courtine, le_blanc
):
    url = reverse("tableaux:bilan-request", args=[le_blanc.pk])
    assert client_for(elu_ussel).post(url).status_code == 404
    url = reverse("tableaux:bilan-request", args=[ussel_la_courtine.pk])
    assert client_for(partenaire).post(url).status_code == 403
    assert client_for(prefecture_36).post(url).status_code == 404
    assert client_for(elu_ussel).get(url).status_code == 405
    assert not Bilan.objects.exists()
    # Someone else's report of another territory cannot be downloaded.
    client_for(prefecture_36).post(reverse("tableaux:bilan-request", args=[le_blanc.pk]))
    Bilan.objects.update(statut=Bilan.Statut.PRET)
    bilan = Bilan.objects.get()
    assert client_for(elu_ussel).get(reverse("tableaux:bilan", args=[bilan.pk])).status_code == 404


def test_a_broker_that_does_not_answer_fails_the_report_with_a_clear_message(
    client_for, elu_ussel, ussel_la_courtine, monkeypatch, django_capture_on_commit_callbacks
):
    from tableaux import tasks

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.generate_bilan, "apply_async", down)
    client = client_for(elu_ussel)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("tableaux:bilan-request", args=[ussel_la_courtine.pk]))
    response = client.get(response.url)
    assert "Service momentanément indisponible" in response.content.decode()
    assert Bilan.objects.get().statut == Bilan.Statut.ECHEC


def test_the_bilan_carries_the_states_block_and_what_changed_since_the_last_one(
    client_for, elu_ussel, ussel_la_courtine, django_capture_on_commit_callbacks, time_machine
):
    from datetime import date
    from decimal import Decimal

    from actions.models import LigneFinancement
    from tableaux.bilan import bloc_marque

    time_machine.move_to("2026-11-03 09:00:00+01:00")
    old = make_fiche(ussel_la_courtine, "1.1", titre="Halle", maturite=FicheAction.Maturite.LIVREE)
    old.date_fin_reelle = date(2026, 10, 1)
    old.save()
    client = client_for(elu_ussel)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("tableaux:bilan-request", args=[ussel_la_courtine.pk]))
    first = pdf_text(download(client, Bilan.objects.get()))
    assert "Premier bilan de ce bénéficiaire" in first
    assert "RÉPUBLIQUE FRANÇAISE" in first.upper() and "Petites villes de demain" in first

    time_machine.move_to("2026-12-07 09:00:00+01:00")
    client = client_for(elu_ussel)
    livree = make_fiche(
        ussel_la_courtine, "1.2", titre="Voie verte", maturite=FicheAction.Maturite.LIVREE
    )
    livree.date_fin_reelle = date(2026, 11, 20)
    livree.save()
    engagee = make_fiche(
        ussel_la_courtine,
        "1.3",
        titre="Îlot Gambetta",
        maturite=FicheAction.Maturite.ENGAGEE,
        lignes=[("DETR", Decimal("30000"))],
    )
    engagee.date_debut_reelle = date(2026, 12, 1)
    engagee.save()
    engagee.financements.update(statut=LigneFinancement.Statut.NOTIFIE, date_decision="2026-11-15")
    make_fiche(ussel_la_courtine, "1.4", titre="Sans date", maturite=FicheAction.Maturite.ENGAGEE)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("tableaux:bilan-request", args=[ussel_la_courtine.pk]))
    newer = Bilan.objects.order_by("-requested_at").first()
    text = pdf_text(download(client, newer)).replace("\u00a0", " ").replace("\u202f", " ")
    assert "Depuis le bilan du 3 novembre 2026" in text
    assert "1 fiche livrée : 1.2 – Voie verte (le 20 novembre 2026)" in text
    assert "Halle (le" not in text  # delivered before the previous bilan
    assert "1 fiche engagée : 1.3 – Îlot Gambetta (le 1er décembre 2026)" in text
    assert "30 000 € de financements notifiés (1 décision)" in text
    assert "1 fiche engagée sans début réel" in text
    assert "Bénéficiaire : Ussel – La Courtine (Corrèze)" in text
    assert "Situation au 7 décembre 2026" in text
    # The State's block is DSFR's, from django-dsfr's static files (Marianne, the devise).
    images = {k: base64.b64decode(v.split(",", 1)[1]) for k, v in bloc_marque().items()}
    assert images["marianne"].startswith(b"<svg") and images["devise"].startswith(b"<svg")
    assert b"viewBox='0 0 252 180'" in images["devise"]
