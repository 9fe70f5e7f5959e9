"""Every PDF upload (signed scans, decisions, journal attachments) goes through one validator."""

import html
import re
from datetime import date

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from actions.models import PointAvancement
from communes.models import DecisionStatut
from conventions.models import ScanSigne
from tests import pdfs
from tests.actions import test_fiches
from tests.communes import test_beneficiaires
from tests.conventions import conftest as conventions_fixtures

pytestmark = pytest.mark.django_db

# The fixtures of the three upload pages, borrowed from their own tests.
axes_ussel = test_fiches.axes_ussel
fiche_ussel = test_fiches.fiche_ussel
issoudun = test_beneficiaires.issoudun
candidat = test_beneficiaires.candidat
cadre_ussel = conventions_fixtures.cadre_ussel

CLEAN = pdfs.clean_pdf()
STORED_NAME = re.compile(r"[0-9a-f]{32}\.pdf")

HOSTILE = [
    pytest.param(pdfs.pdf_with_javascript(), "Ce PDF contient du JavaScript", id="javascript"),
    pytest.param(
        pdfs.pdf_with_open_action_javascript(),
        "Ce PDF contient du JavaScript",
        id="javascript-escaped-name",
    ),
    pytest.param(
        pdfs.pdf_with_launch_action(),
        "Ce PDF contient une action qui lance un programme",
        id="launch",
    ),
    pytest.param(
        pdfs.pdf_with_embedded_file(), "Ce PDF contient des fichiers incorporés", id="embedded"
    ),
    pytest.param(
        pdfs.HTML_WITH_PDF_COMMENT, "Ce fichier n'est pas un PDF valide", id="html-with-marker"
    ),
    pytest.param(
        b"%PDF-1.4\n<html><script>alert(1)</script></html>\n%%EOF\n",
        "Ce fichier n'est pas un PDF valide",
        id="markers-around-html",
    ),
    pytest.param(
        b"PK\x03\x04" + b"\x00" * 60 + CLEAN,
        "Ce fichier n'est pas un PDF valide",
        id="junk-before",
    ),
    pytest.param(
        CLEAN + b"PK\x03\x04" + b"\x00" * 200,
        "d'autres données après la fin du PDF",
        id="junk-after",
    ),
]


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def stored_files(prefix: str) -> list[str]:
    try:
        return default_storage.listdir(prefix)[1]
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("content, message", HOSTILE)
def test_hostile_signed_scan_is_refused_and_nothing_stored(
    client_for, cdp_ussel, cadre_ussel, content, message
):
    response = client_for(cdp_ussel).post(
        reverse("conventions:upload-scan", args=[cadre_ussel.pk]),
        {"fichier": SimpleUploadedFile("scan.pdf", content, content_type="application/pdf")},
        follow=True,
    )
    assert message in page_text(response)
    assert not ScanSigne.objects.exists()
    assert not stored_files(f"conventions/{cadre_ussel.pk}/signees")


@pytest.mark.parametrize("content, message", HOSTILE)
def test_hostile_decision_document_is_refused(
    client_for, prefecture_36, candidat, content, message
):
    response = client_for(prefecture_36).post(
        reverse("communes:decision-create", args=[candidat.pk]),
        {
            "nouveau_statut": "laureat",
            "date_decision": date.today().isoformat(),
            "reference": "Arrêté",
            "document": SimpleUploadedFile("arrete.pdf", content),
        },
    )
    assert response.status_code == 200
    assert message in page_text(response)
    assert not DecisionStatut.objects.filter(document__gt="").exists()
    candidat.refresh_from_db()
    assert candidat.statut == "candidat"


@pytest.mark.parametrize("content, message", HOSTILE[:3])
def test_hostile_journal_attachment_is_refused(
    client_for, cdp_ussel, fiche_ussel, content, message
):
    response = client_for(cdp_ussel).post(
        reverse("actions:point-create", args=[fiche_ussel.pk]),
        {
            "date": "2025-05-12",
            "texte": "Compte rendu joint.",
            "piece_jointe": SimpleUploadedFile("cr.pdf", content),
        },
    )
    assert response.status_code == 200
    assert message in page_text(response)
    assert not PointAvancement.objects.exists()


def test_uploads_are_stored_under_a_generated_pdf_name(
    client_for, cdp_ussel, prefecture_36, cadre_ussel, candidat, fiche_ussel
):
    hostile_name = "../../evil.html"
    client_for(cdp_ussel).post(
        reverse("conventions:upload-scan", args=[cadre_ussel.pk]),
        {"fichier": SimpleUploadedFile(hostile_name, CLEAN)},
    )
    client_for(prefecture_36).post(
        reverse("communes:decision-create", args=[candidat.pk]),
        {
            "nouveau_statut": "laureat",
            "date_decision": date.today().isoformat(),
            "reference": "Arrêté",
            "document": SimpleUploadedFile("arrete.svg", CLEAN),
        },
    )
    client_for(cdp_ussel).post(
        reverse("actions:point-create", args=[fiche_ussel.pk]),
        {"date": "2025-05-12", "texte": "CR", "piece_jointe": SimpleUploadedFile("a.exe", CLEAN)},
    )
    names = [
        ScanSigne.objects.get().fichier.name,
        DecisionStatut.objects.exclude(document="").get().document.name,
        PointAvancement.objects.get().piece_jointe.name,
    ]
    prefixes = [
        f"conventions/{cadre_ussel.pk}/signees/",
        f"decisions/{candidat.pk}/",
        f"actions/{fiche_ussel.pk}/",
    ]
    for name, prefix in zip(names, prefixes, strict=True):
        assert name.startswith(prefix)
        assert STORED_NAME.fullmatch(name.removeprefix(prefix)), name
        with default_storage.open(name) as stored:
            assert stored.read() == CLEAN
    assert ScanSigne.objects.get().nom_original == "evil.html"
