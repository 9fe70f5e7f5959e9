import io
import os
import re
import time
from datetime import date
from decimal import Decimal
from types import SimpleNamespace
from urllib.parse import urljoin

import pytest
from django.core.files.storage import default_storage
from pypdf import PdfReader

from conventions import pdf
from conventions.models import Convention, DocumentConvention, Partie, SecteurIntervention
from conventions.pdf import (
    RefusedURL,
    StaticFilesURLFetcher,
    generate_document,
    render_pdf,
    request_generation,
)
from conventions.tasks import generate_convention_pdf

pytestmark = pytest.mark.django_db


@pytest.fixture
def cadre(ussel_la_courtine):
    """A convention-cadre of Ussel – La Courtine with its parties and secteurs."""
    convention = Convention.objects.create(
        beneficiaire=ussel_la_courtine,
        type=Convention.Type.CADRE,
        titre="Convention-cadre PVD valant ORT – Ussel – La Courtine",
        date_entree_vigueur=date(2023, 6, 1),
        duree_annees=5,
        date_fin=date(2028, 6, 1),
    )
    signataire, en_presence = Partie.Role.SIGNATAIRE, Partie.Role.EN_PRESENCE
    rows = [
        {
            "nature": "commune",
            "commune_id": "19275",
            "role": signataire,
            "representant": "Mme Élise Maire, maire d'Ussel",
            "date_deliberation": date(2023, 4, 12),
            "date_signature": date(2023, 6, 1),
        },
        {"nature": "commune", "commune_id": "23067", "role": signataire},
        {"nature": "epci", "epci_id": "200066744", "role": signataire},
        {"nature": "etat", "role": signataire},
        {"nature": "partenaire", "nom_partenaire": "Banque des Territoires", "role": signataire},
        {"nature": "partenaire", "nom_partenaire": "Cerema", "role": en_presence},
    ]
    for ordre, row in enumerate(rows):
        Partie.objects.create(convention=convention, ordre=ordre, **row)
    SecteurIntervention.objects.create(
        convention=convention,
        commune_id="19275",
        nom="Centre-ville d'Ussel",
        centre_ville_principale=True,
    )
    SecteurIntervention.objects.create(
        convention=convention, commune_id="23067", nom="Centre-bourg de La Courtine"
    )
    return convention


def read(content: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(content))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    return reader, text


def stored(document: DocumentConvention) -> bytes:
    with document.fichier.open("rb") as handle:
        return handle.read()


# Rendering ----------------------------------------------------------------------------------


def test_convention_cadre_renders_as_a_pdf_with_its_articles(cadre):
    content = render_pdf(cadre)

    assert content.startswith(b"%PDF")
    reader, text = read(content)
    assert len(reader.pages) >= 3
    assert "Convention-cadre Petites villes de demain valant opération de revitalisation" in text
    assert "Ussel" in text
    assert "Page 1 sur" in text
    for heading in ("Préambule", "Article 1", "Article 4 – Durée", "Signatures"):
        assert heading in text
    assert "Article 6 – Périmètre de l'opération de revitalisation de territoire" in text
    assert "Centre-ville de la ville principale" in text
    assert "représentée par Mme Élise Maire" in text
    assert "délibération du conseil municipal du 12 avril 2023" in text
    assert "Fait à Ussel, le 1er juin 2023" in text
    assert "EN PRÉSENCE DE Cerema" in text
    assert "le plan d'action de la présente convention est établi" in text.lower()


def test_adhesion_and_avenant_have_their_own_title(cadre):
    cadre.statut = Convention.Statut.SIGNEE
    cadre.date_signature = date(2023, 6, 1)
    cadre.save()
    avenant = Convention.objects.create(
        beneficiaire=cadre.beneficiaire,
        type=Convention.Type.AVENANT,
        convention_modifiee=cadre,
        titre="Avenant n° 1",
    )
    Partie.objects.create(convention=avenant, nature="etat", role="signataire")

    _, text = read(render_pdf(avenant))

    assert "Avenant n° 1 à la convention-cadre Petites villes de demain" in text
    assert "signée le 1er juin 2023" in text
    assert "Article 6" not in text

    adhesion = Convention.objects.create(
        beneficiaire=cadre.beneficiaire, type=Convention.Type.ADHESION, titre="Adhésion"
    )
    _, text = read(render_pdf(adhesion))
    assert "Convention d'adhésion au programme Petites villes de demain" in text
    assert "entre en vigueur à compter de sa signature" in text


def test_pdfa_variant_declares_pdfa_in_its_metadata(cadre):
    reader, _ = read(render_pdf(cadre, pdfa=True))

    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data().decode()
    assert 'pdfaid:part="2"' in xmp
    assert 'pdfaid:conformance="B"' in xmp
    assert "/OutputIntents" in root


def test_annex_lists_fiches_and_their_financing(cadre):
    fiches = [
        SimpleNamespace(
            reference=f"FA-{n}",
            titre=f"Réhabilitation de l'îlot n° {n}",
            axe="Habitat",
            maitre_ouvrage="Commune d'Ussel",
            cout_total=Decimal("150000"),
            financements=[("Banque des Territoires", Decimal("50000")), ("Région", 25000)],
        )
        for n in (1, 2)
    ]

    _, text = read(render_pdf(cadre, fiches=fiches))

    assert "Réhabilitation de l'îlot n° 2" in text
    assert "Maquette financière" in text
    assert "100 000" in text  # Banque des Territoires, both fiches


# URL fetcher ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/x.png",
        "https://example.org/style.css",
        "file:///etc/passwd",
        "https://static.portail-pvd.invalid/static/../../etc/passwd",
        "https://static.portail-pvd.invalid/ailleurs/x.css",
    ],
)
def test_url_fetcher_refuses_anything_but_static_files(url):
    with pytest.raises(RefusedURL):
        StaticFilesURLFetcher().fetch(url)


def test_url_fetcher_serves_static_files_and_data_urls():
    fetcher = StaticFilesURLFetcher()

    css = fetcher.fetch(urljoin(fetcher.base_url, "conventions/pdf.css"))
    assert css.content_type == "text/css"
    assert b"@page" in css.read()
    font = fetcher.fetch(urljoin(fetcher.base_url, "/static/dsfr/dist/fonts/Marianne-Bold.woff2"))
    assert font.read(4) == b"wOF2"
    assert fetcher.fetch("data:text/plain,bonjour").read() == b"bonjour"


def pages_text(content: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(content)).pages]


def test_renderer_user_agent_stylesheet_styles_list_markers_and_no_other_pseudo_element():
    from weasyprint.html import UA

    from conventions import pdf_render

    source = pdf_render.UNIVERSAL_PSEUDO_ELEMENTS.sub(pdf_render._scoped, UA)
    assert not re.search(r"^::", source, re.MULTILINE)
    assert "li::marker {" in source
    html = "<html lang='fr'><body><ul><li>Premier</li><li>Second</li></ul></body></html>"
    content = pdf_render.html_class()(string=html).write_pdf()
    assert pages_text(content)[0].count("•") == 2


def test_renderer_lays_the_convention_out_as_weasyprint_would(plan_ussel, monkeypatch):
    """Its user-agent stylesheet and its switched-off garbage collector change nothing."""
    import gc

    from weasyprint import HTML

    from conventions import pdf_render

    html = pdf.document_html(plan_ussel)
    arguments = (html, pdf.static_base_url(), pdf.static_roots(), {})
    ours, missing, _ = pdf_render.render(*arguments)
    assert gc.isenabled()
    monkeypatch.setattr(pdf_render, "html_class", lambda: HTML)
    theirs = pdf_render.render(*arguments)[0]
    assert not missing
    assert len(pages_text(ours)) > 3
    assert pages_text(ours) == pages_text(theirs)


def test_missing_static_file_is_a_rendering_error(cadre, monkeypatch):
    monkeypatch.setattr(pdf, "static_roots", lambda: [])  # the renderer finds nothing

    with pytest.raises(pdf.PdfRenderingError, match="conventions/pdf.css"):
        render_pdf(cadre)


# Generated versions -------------------------------------------------------------------------


def new_document(convention, version=1) -> DocumentConvention:
    return DocumentConvention.objects.create(convention=convention, version=version)


def test_generating_twice_keeps_one_file_and_one_ready_version(cadre):
    document = new_document(cadre)

    generate_document(document.pk)
    generate_document(document.pk)

    document.refresh_from_db()
    assert document.statut == DocumentConvention.Statut.PRET
    assert document.fichier.name == f"conventions/{cadre.pk}/generees/convention-{cadre.pk}-v1.pdf"
    assert document.finished_at is not None
    content = stored(document)
    assert content.startswith(b"%PDF")
    assert document.sha256 == pdf.hashlib.sha256(content).hexdigest()
    _, files = default_storage.listdir(f"conventions/{cadre.pk}/generees")
    assert files == [f"convention-{cadre.pk}-v1.pdf"]


def test_a_file_left_by_an_interrupted_run_is_replaced(cadre):
    document = new_document(cadre)
    default_storage.save(
        f"conventions/{cadre.pk}/generees/convention-{cadre.pk}-v1.pdf", io.BytesIO(b"old")
    )

    generate_document(document.pk)

    document.refresh_from_db()
    assert document.fichier.name.endswith(f"convention-{cadre.pk}-v1.pdf")
    assert stored(document).startswith(b"%PDF")


def test_rendering_failure_marks_failed_and_keeps_the_previous_version(cadre, monkeypatch):
    previous = new_document(cadre, version=1)
    generate_document(previous.pk)
    previous.refresh_from_db()
    failing = new_document(cadre, version=2)

    def broken(*args, **kwargs):
        raise ValueError("gabarit illisible")

    monkeypatch.setattr(pdf, "render_pdf", broken)
    generate_document(failing.pk)

    failing.refresh_from_db()
    assert failing.statut == DocumentConvention.Statut.ECHEC
    assert "La génération du PDF a échoué" in failing.erreur
    assert "gabarit illisible" in failing.erreur
    assert not failing.fichier
    kept = DocumentConvention.objects.get(pk=previous.pk)
    assert (kept.statut, kept.fichier.name, kept.sha256) == (
        DocumentConvention.Statut.PRET,
        previous.fichier.name,
        previous.sha256,
    )
    assert cadre.latest_document() == kept


def test_transient_error_is_retried_then_marks_failed_on_the_last_attempt(cadre, monkeypatch):
    from celery.exceptions import Retry

    document = new_document(cadre)

    def storage_down(document_id):
        raise OSError("stockage indisponible")

    monkeypatch.setattr("conventions.tasks.generate_document", storage_down)
    with pytest.raises(Retry):
        generate_convention_pdf.apply(args=[document.pk])
    document.refresh_from_db()
    assert document.statut == DocumentConvention.Statut.EN_COURS

    # The last attempt, as a worker runs it (failures reported, not raised to the caller).
    result = generate_convention_pdf.apply(
        args=[document.pk], retries=generate_convention_pdf.max_retries, throw=False
    )
    assert isinstance(result.result, OSError)
    document.refresh_from_db()
    assert document.statut == DocumentConvention.Statut.ECHEC
    assert "après plusieurs tentatives" in document.erreur


def test_request_generation_numbers_versions(cadre, cdp_ussel):
    versions = [request_generation(cadre, cdp_ussel).version for _ in range(3)]

    assert versions == [1, 2, 3]
    assert list(cadre.documents.values_list("version", "statut", "requested_by")) == [
        (3, "en_cours", cdp_ussel.pk),
        (2, "en_cours", cdp_ussel.pk),
        (1, "en_cours", cdp_ussel.pk),
    ]


def test_generation_is_queued_only_after_commit(
    cadre, cdp_ussel, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        document = request_generation(cadre, cdp_ussel, pdfa=True)

    assert len(callbacks) == 1
    document.refresh_from_db()
    assert document.statut == DocumentConvention.Statut.EN_COURS  # nothing ran yet

    callbacks[0]()  # the commit: the task runs (eagerly in tests)

    document.refresh_from_db()
    assert document.statut == DocumentConvention.Statut.PRET
    assert document.pdfa
    reader, _ = read(stored(document))
    assert b"pdfaid" in reader.trailer["/Root"]["/Metadata"].get_object().get_data()


# Through a real worker ------------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
@pytest.mark.django_db(transaction=True)
def test_generation_goes_through_a_real_worker_and_redis(cadre, cdp_ussel):
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connection

    from pvd.celery import app

    def close_worker_connection(**kwargs):
        # Runs in the worker's thread: its connection must not outlive the test database.
        connection.close()

    task_postrun.connect(close_worker_connection, weak=False)
    app.conf.task_always_eager = False
    try:
        with start_worker(app, perform_ping_check=False, loglevel="WARNING"):
            assert app.conf.broker_url.startswith("redis://")
            document = request_generation(cadre, cdp_ussel)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                document.refresh_from_db()
                if document.statut != DocumentConvention.Statut.EN_COURS:
                    break
                time.sleep(0.2)
    finally:
        app.conf.task_always_eager = True
        task_postrun.disconnect(close_worker_connection)

    assert document.statut == DocumentConvention.Statut.PRET, document.erreur
    # The worker thread wrote to this process's InMemoryStorage.
    reader, text = read(stored(document))
    assert len(reader.pages) >= 3
    assert "Ussel" in text
    assert "Article 1" in text


# Annexed plan d'action, from the portal ------------------------------------------------------


@pytest.fixture
def plan_ussel(cadre):
    """Four fiches of Ussel – La Courtine's plan, one of them abandoned."""
    from actions.models import FicheAction, Financeur, LigneFinancement, ensure_axes

    beneficiaire = cadre.beneficiaire
    ensure_axes(beneficiaire)
    axes = {axe.numero: axe for axe in beneficiaire.axes.all()}
    financeurs = {f.nom: f for f in Financeur.objects.all()}
    rows = [
        (
            "3.1",
            3,
            "Voie verte de la Diège",
            1_000_000,
            [("Fonds vert", 300_000), ("Région", 200_000)],
        ),
        (
            "1.10",
            1,
            "Réhabilitation de l'îlot des Tanneurs",
            500_000,
            [("Anah", 150_000), ("Région", 50_000)],
        ),
        ("1.2", 1, "OPAH-RU multisite", 800_000, [("Anah", 400_000), ("Autofinancement", 100_000)]),
        ("2.1", 2, "Transformation de l'ancien tribunal", 900_000, [("DETR", 90_000)]),
    ]
    for reference, axe, titre, cout, lignes in rows:
        fiche = FicheAction.objects.create(
            beneficiaire=beneficiaire,
            axe=axes[axe],
            reference=reference,
            titre=titre,
            maitre_ouvrage="Commune d'Ussel",
            cout_total=Decimal(cout),
            maturite="abandonnee" if reference == "2.1" else "engagee",
        )
        for nom, montant in lignes:
            LigneFinancement.objects.create(
                fiche=fiche, financeur=financeurs[nom], montant=Decimal(montant)
            )
    return cadre


def test_annex_lists_the_plan_by_axis_and_reference_without_abandoned_actions(plan_ussel):
    fiches = pdf.annex_fiches(plan_ussel)

    assert [f.reference for f in fiches] == ["1.2", "1.10", "3.1"]
    assert fiches[0].axe == "1. Habitat"
    assert fiches[2].financements == [("Fonds vert", 300_000), ("Région", 200_000)]

    maquette = pdf.maquette_financiere(fiches)
    assert maquette["financeurs"] == ["Anah", "Fonds vert", "Région", "Autofinancement"]
    assert maquette["totaux"] == [550_000, 300_000, 250_000, 100_000]
    assert (maquette["cout_total"], maquette["total_finance"]) == (2_300_000, 1_200_000)


def test_annex_reads_the_plan_in_a_fixed_number_of_queries(plan_ussel, django_assert_num_queries):
    with django_assert_num_queries(2):  # fiches with their axis, then lines with their funder
        pdf.annex_fiches(plan_ussel)


def test_convention_pdf_annexes_the_beneficiary_plan(plan_ussel):
    _, text = read(render_pdf(plan_ussel))
    text = text.replace("\u00a0", " ").replace("\u202f", " ")

    assert "Le plan d'action comprend 3 fiches action" in text
    assert "Voie verte de la Diège" in text
    assert "Transformation de l'ancien tribunal" not in text
    assert "Maquette financière" in text
    assert "Fonds vert" in text
    assert "Total 2 300 000 550 000 300 000 250 000 100 000 1 200 000" in text


def test_avenant_and_adhesion_annex_the_same_plan(plan_ussel):
    avenant = Convention.objects.create(
        beneficiaire=plan_ussel.beneficiaire,
        type=Convention.Type.AVENANT,
        convention_modifiee=plan_ussel,
        titre="Avenant n° 1",
    )
    adhesion = Convention.objects.create(
        beneficiaire=plan_ussel.beneficiaire, type=Convention.Type.ADHESION, titre="Adhésion"
    )

    for convention in (avenant, adhesion):
        assert [f.titre for f in pdf.annex_fiches(convention)][-1] == "Voie verte de la Diège"
    _, text = read(render_pdf(avenant))
    assert "OPAH-RU multisite" in text


# Title once; a signed convention keeps its PDF as signed ----------------------------------


def test_the_title_is_printed_once(cadre):
    reader, _ = read(render_pdf(cadre))
    first_page = " ".join(reader.pages[0].extract_text().split())
    assert first_page.count("Convention-cadre Petites villes de demain valant") == 1
    assert "Convention-cadre PVD valant ORT – Ussel – La Courtine" not in first_page


def test_signing_freezes_the_pdf_and_the_plan_a_date_is_a_separate_document(
    client_for, prefecture_19, plan_ussel, time_machine, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    from actions.models import FicheAction
    from tests.conventions.test_conventions import sign_all

    time_machine.move_to("2026-05-01 10:00:00+02:00")
    sign_all(plan_ussel, on=date(2026, 4, 30))
    client = client_for(prefecture_19)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("conventions:signer", args=[plan_ussel.pk]))
    signed = plan_ussel.documents.get()
    assert (signed.nature, signed.pdfa, signed.statut) == ("signee", True, "pret")
    signed_bytes = stored(signed)
    _, text = read(signed_bytes)
    assert "Annexe – Plan d'action au 1er mai 2026" in text
    assert "Voie verte de la Diège" in text

    time_machine.move_to("2026-12-07 10:00:00+01:00")
    fiche = FicheAction.objects.get(beneficiaire=plan_ussel.beneficiaire, reference="3.1")
    fiche.titre = "Voie verte prolongée"
    fiche.save()
    client = client_for(prefecture_19)  # a new session, months later
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("conventions:generate", args=[plan_ussel.pk]))

    plan = plan_ussel.documents.exclude(pk=signed.pk).get()
    assert (plan.nature, plan.statut) == ("plan", "pret")
    _, text = read(stored(plan))
    assert "Plan d'action au 7 décembre 2026" in text
    assert "Voie verte prolongée" in text
    assert "ne modifie pas la convention-cadre" in text
    assert "signée le 30 avril 2026" in text
    # The signed version is the same file, served as signed.
    signed.refresh_from_db()
    assert stored(signed) == signed_bytes
    response = client.get(reverse("conventions:download-document", args=[signed.pk]))
    assert b"".join(response.streaming_content) == signed_bytes
    assert "signee" in response["Content-Disposition"]
    page = client.get(reverse("conventions:detail", args=[plan_ussel.pk])).content.decode()
    assert "Générer le plan d’action à date" in page
    assert "Convention telle que signée" in page


def test_a_refused_signature_generates_nothing(client_for, prefecture_19, plan_ussel):
    from django.urls import reverse

    client_for(prefecture_19).post(reverse("conventions:signer", args=[plan_ussel.pk]))
    assert not plan_ussel.documents.exists()
