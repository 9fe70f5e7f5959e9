"""« Télécharger le bilan »: a dated PDF made by the job protocol, kept as generated."""

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
