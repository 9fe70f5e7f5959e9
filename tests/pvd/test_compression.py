"""Responses compressed for the browsers that ask: pages by Django's GZipMiddleware, static
files by WhiteNoise (.br and .gz written by collectstatic)."""

import gzip

import pytest
from django.conf import settings
from django.http import HttpResponse
from whitenoise.compress import Compressor

from pvd.middleware import GZipTextMiddleware

pytestmark = pytest.mark.django_db


def test_pages_are_gzipped_when_asked(client_for, national):
    client = client_for(national)
    plain = client.get("/mentions-legales/")
    assert "Content-Encoding" not in plain
    response = client.get("/mentions-legales/", HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response["Vary"]
    text = gzip.decompress(response.content).decode()
    assert "Mentions légales" in text
    assert len(response.content) < len(plain.content) / 2


def test_gzip_comes_after_whitenoise_so_static_files_keep_their_own():
    middleware = settings.MIDDLEWARE
    gzip_at = middleware.index("pvd.middleware.GZipTextMiddleware")
    assert gzip_at < middleware.index("django.contrib.sessions.middleware.SessionMiddleware")
    # WhiteNoise answers static files before the GZip middleware sees them (the test
    # settings leave WhiteNoise out, production has it first).
    assert "whitenoise" not in " ".join(middleware[gzip_at:])


@pytest.mark.parametrize(
    ("content_type", "compressed"),
    [
        ("text/html; charset=utf-8", True),
        ("text/csv", True),
        ("application/json", True),
        ("application/pdf", False),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", False),
        ("image/png", False),
    ],
)
def test_only_text_is_compressed(rf, content_type, compressed):
    request = rf.get("/", HTTP_ACCEPT_ENCODING="gzip")
    body = b"Petites villes de demain. " * 100
    middleware = GZipTextMiddleware(lambda request: HttpResponse(body, content_type=content_type))
    response = middleware(request)
    assert (response.get("Content-Encoding") == "gzip") is compressed
    assert (response.content == body) is not compressed


def test_collectstatic_writes_brotli_beside_gzip():
    assert Compressor(quiet=True).use_brotli
