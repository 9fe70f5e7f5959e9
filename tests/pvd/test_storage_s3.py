"""Files on an S3-compatible store (moto's in-process S3): uploads, generated PDFs and exports
go to the bucket and come back through the portal's download views, rights checked first."""

import io
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from moto import mock_aws
from openpyxl import load_workbook

from actions.models import ExportPlan
from conventions.models import DocumentConvention, ScanSigne
from pvd.settings import s3_storage
from tableaux.models import Bilan
from tests.actions.test_excel import plan_ussel  # noqa: F401 - fixture
from tests.conventions.conftest import cadre_ussel  # noqa: F401 - fixture
from tests.pdfs import clean_pdf
from tests.postes.conftest import poste_le_blanc, regles  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

BUCKET = "pvd-documents"
REGION = "eu-west-3"
PDF = clean_pdf()


@pytest.fixture
def s3(settings, monkeypatch):
    """The shipped S3 storage (pvd.settings.s3_storage) on moto's in-process S3."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        settings.STORAGES = {**settings.STORAGES, "default": s3_storage(BUCKET, region=REGION)}
        yield client


def keys(client) -> list[str]:
    return [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def body(client, key: str) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def downloaded(response) -> bytes:
    assert response.status_code == 200, response.status_code
    return b"".join(response.streaming_content)


def test_the_s3_storage_is_private_signed_and_never_overwrites():
    options = s3_storage(BUCKET)["OPTIONS"]
    assert options["file_overwrite"] is False
    assert options["default_acl"] is None
    assert options["querystring_auth"] is True and options["querystring_expire"] <= 300
    config = options["client_config"]
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"


def test_a_name_already_taken_gets_another_key_not_the_same_object(s3):
    first = default_storage.save("conventions/1/generees/convention-1-v1.pdf", ContentFile(b"A"))
    second = default_storage.save("conventions/1/generees/convention-1-v1.pdf", ContentFile(b"B"))
    assert first != second
    assert (body(s3, first), body(s3, second)) == (b"A", b"B")


def test_a_signed_scan_goes_to_the_bucket_and_back_to_who_may_see_it(
    s3,
    client_for,
    cdp_ussel,
    prefecture_36,
    cadre_ussel,  # noqa: F811 - fixture
):
    client = client_for(cdp_ussel)
    upload = SimpleUploadedFile("convention signée.pdf", PDF, content_type="application/pdf")
    client.post(reverse("conventions:upload-scan", args=[cadre_ussel.pk]), {"fichier": upload})
    scan = ScanSigne.objects.get()
    assert keys(s3) == [scan.fichier.name]
    assert body(s3, scan.fichier.name) == PDF
    url = reverse("conventions:download-scan", args=[scan.pk])
    assert downloaded(client.get(url)) == PDF
    assert client_for(prefecture_36).get(url).status_code == 404


def test_with_redirects_a_download_is_a_signed_url_valid_one_minute(
    s3,
    settings,
    client_for,
    cdp_ussel,
    prefecture_36,
    cadre_ussel,  # noqa: F811 - fixture
):
    settings.PVD_FILES_REDIRECT = True
    client = client_for(cdp_ussel)
    client.post(
        reverse("conventions:upload-scan", args=[cadre_ussel.pk]),
        {"fichier": SimpleUploadedFile("s.pdf", PDF, content_type="application/pdf")},
    )
    scan = ScanSigne.objects.get()
    url = reverse("conventions:download-scan", args=[scan.pk])
    response = client.get(url)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert location.path.endswith(scan.fichier.name)
    assert query["X-Amz-Expires"] == ["60"] and "X-Amz-Signature" in query
    assert query["response-content-disposition"] == [
        f'attachment; filename="convention-{cadre_ussel.pk}-signee-{scan.pk}.pdf"'
    ]
    # Rights first: another territory gets a 404, no URL.
    assert client_for(prefecture_36).get(url).status_code == 404


def test_a_job_description_goes_to_the_bucket_and_back(
    s3,
    client_for,
    prefecture_36,
    national,
    poste_le_blanc,  # noqa: F811 - fixture
):
    client = client_for(prefecture_36)
    response = client.post(
        reverse("postes:etat", kwargs={"pk": poste_le_blanc.pk}),
        {
            "nouvel_etat": "en_recrutement",
            "date": "2024-02-01",
            "date_publication": "2024-02-01",
            "lien_offre": "https://choisirleservicepublic.gouv.fr/offre/123",
            "fiche_de_poste": SimpleUploadedFile("fiche.pdf", PDF, "application/pdf"),
        },
    )
    assert response.status_code == 302
    poste_le_blanc.refresh_from_db()
    assert keys(s3) == [poste_le_blanc.fiche_de_poste.name]
    url = reverse("postes:fiche", kwargs={"pk": poste_le_blanc.pk})
    assert downloaded(client.get(url)) == PDF


def test_a_generated_convention_pdf_is_stored_in_the_bucket_and_downloaded(
    s3,
    client_for,
    cdp_ussel,
    prefecture_36,
    cadre_ussel,  # noqa: F811 - fixture
    django_capture_on_commit_callbacks,
):
    client = client_for(cdp_ussel)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("conventions:generate", args=[cadre_ussel.pk]))
    document = DocumentConvention.objects.get()
    assert document.statut == DocumentConvention.Statut.PRET
    assert keys(s3) == [document.fichier.name]
    url = reverse("conventions:download-document", args=[document.pk])
    content = downloaded(client.get(url))
    assert content.startswith(b"%PDF") and content == body(s3, document.fichier.name)
    assert client_for(prefecture_36).get(url).status_code == 404


def test_a_bilan_is_stored_in_the_bucket_and_downloaded(
    s3, client_for, elu_ussel, ussel_la_courtine, django_capture_on_commit_callbacks
):
    client = client_for(elu_ussel)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("tableaux:bilan-request", args=[ussel_la_courtine.pk]))
    bilan = Bilan.objects.get()
    assert bilan.statut == Bilan.Statut.PRET
    assert keys(s3) == [bilan.fichier.name]
    content = downloaded(client.get(reverse("tableaux:bilan", args=[bilan.pk])))
    assert content.startswith(b"%PDF") and content == body(s3, bilan.fichier.name)


def test_an_export_round_trips_through_the_bucket_and_is_purged_from_it(
    s3,
    client_for,
    national,
    plan_ussel,  # noqa: F811 - fixture
    django_capture_on_commit_callbacks,
):
    from actions.tasks import purge_exports

    client = client_for(national)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("actions:export-national"))
    export = ExportPlan.objects.get()
    assert export.statut == ExportPlan.Statut.PRET
    assert keys(s3) == [export.fichier.name]
    content = downloaded(client.get(reverse("actions:export-download", args=[export.pk])))
    workbook = load_workbook(io.BytesIO(content))
    assert workbook["Fiches action"].max_row == 1 + 2
    ExportPlan.objects.filter(pk=export.pk).update(
        requested_at=export.requested_at.replace(year=2000)
    )
    purge_exports()
    assert keys(s3) == []
