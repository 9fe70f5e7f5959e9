"""Two instances that agree: two gunicorn instances of the shipped settings (DEBUG off, Redis
cache, sessions in PostgreSQL) behind HAProxy, one Celery worker, one shared file directory,
their own redis-server, all on the loopback, on the test's database.

Logged in through A, a reader is known to B; a PDF asked on A, made by the worker, downloads
through B; a fiche changed on B shows at once on A's cached dashboard; Redis stopped, both
instances keep serving, and again once it is back.
"""

import html
import os
import shutil
from datetime import date
from html.parser import HTMLParser

import pytest
import requests
from django.db import connection

from actions.models import FicheAction
from conventions.models import DocumentConvention
from pvd.models import User
from tests.actions.test_plan_readmodel import make_fiche
from tests.conventions.conftest import cadre_ussel  # noqa: F401 - fixture
from tests.servers import (
    free_ports,
    listening,
    start_gunicorn,
    start_haproxy,
    start_redis,
    start_worker,
    stop,
    wait_for,
)

PASSWORD = "deux-instances-qui-s-accordent"
MISSING = [tool for tool in ("haproxy", "redis-server") if not shutil.which(tool)]

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(bool(MISSING), reason=f"not installed: {', '.join(MISSING)}"),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="instances share PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]


class Forms(HTMLParser):
    """The fields of every form of a page, as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({})
        elif not self.forms:
            return
        elif tag == "option" and self._select:
            value = attrs.get("value") or ""
            if "selected" in attrs or self._select not in self.forms[-1]:
                self.forms[-1][self._select] = value
        elif "name" not in attrs:
            return
        elif tag == "input":
            kind = attrs.get("type", "text")
            if kind in {"checkbox", "radio"} and "checked" not in attrs:
                return
            if kind not in {"submit", "button", "file"}:
                self.forms[-1][attrs["name"]] = attrs.get("value") or (
                    "on" if kind == "checkbox" else ""
                )
        elif tag == "select":
            self._select = attrs["name"]
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self.forms[-1][self._textarea] = ""

    def handle_data(self, data):
        if self._textarea:
            self.forms[-1][self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def form_with(page: str, field: str) -> dict:
    parser = Forms()
    parser.feed(page)
    for form in parser.forms:
        if field in form:
            return form
    raise AssertionError(f"no form with {field}")


def text(response) -> str:
    return " ".join(html.unescape(response.text).replace("\u202f", " ").split())


@pytest.fixture
def services(tmp_path, cadre_ussel):  # noqa: F811
    """Redis, two instances A and B, HAProxy before them, a worker: their URLs and Redis."""
    db = connection.settings_dict
    redis_port, port_a, port_b, proxy_port = free_ports(4)
    media = tmp_path / "media"
    media.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.pvd.settings_instances",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PVD_INSTANCES": "2",
        "DEBUG": "false",
        "SECRET_KEY": "two-instances-test-only-secret-key-0123456789abcdefghijklmnop",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MEDIA_ROOT": str(media),
        "PVD_MFA_ENFORCED": "false",
        "LOG_LEVEL": "WARNING",
    }
    started = {"redis": start_redis(tmp_path, redis_port)}
    try:
        started["a"] = start_gunicorn(tmp_path, "a", port_a, env)
        started["b"] = start_gunicorn(tmp_path, "b", port_b, env)
        started["worker"] = start_worker(tmp_path, env)
        for port in (port_a, port_b):
            wait_for(lambda port=port: listening(port), "an instance did not start")
        started["haproxy"] = start_haproxy(tmp_path, proxy_port, {"a": port_a, "b": port_b})
        yield {
            "a": f"http://127.0.0.1:{port_a}",
            "b": f"http://127.0.0.1:{port_b}",
            "proxy": f"http://127.0.0.1:{proxy_port}",
            "redis": (tmp_path, redis_port, started),
            "logs": tmp_path,
        }
    finally:
        for name in ("haproxy", "a", "b", "worker", "redis"):
            stop(started.get(name))


def login(session: requests.Session, base: str, email: str) -> None:
    page = session.get(f"{base}/accounts/login/", timeout=30).text
    fields = form_with(page, "password")
    fields.update(login=email, password=PASSWORD)
    response = session.post(f"{base}/accounts/login/", data=fields, timeout=30)
    assert response.status_code == 200 and "Se déconnecter" in response.text, response.text[-800:]


def post_form(session, base: str, path: str, field: str, **changes) -> requests.Response:
    fields = form_with(session.get(base + path, timeout=30).text, field)
    fields.update(changes)
    return session.post(base + path, data=fields, timeout=30)


def test_two_instances_behind_haproxy_agree(services, cdp_ussel, ussel_la_courtine, cadre_ussel):  # noqa: F811
    a, b = services["a"], services["b"]
    cdp_ussel.set_password(PASSWORD)
    cdp_ussel.save()
    fiche = make_fiche(ussel_la_courtine, "1.1", titre="Halle couverte")
    assert User.objects.count() > 1

    # Logged in through A, known to B (the session lives in PostgreSQL).
    session = requests.Session()
    login(session, a, cdp_ussel.email)
    response = session.get(f"{b}/conventions/", timeout=30)
    assert response.status_code == 200 and cadre_ussel.titre in text(response)

    # HAProxy sends readers to both instances, with the same session.
    served = {
        session.get(f"{services['proxy']}/", timeout=30).headers["X-Served-By"] for _ in range(4)
    }
    assert served == {"a", "b"}

    # A PDF asked on A, made by the worker, downloaded through B.
    csrf = session.cookies["csrftoken"]
    response = session.post(
        f"{a}/conventions/{cadre_ussel.pk}/generer/",
        data={"csrfmiddlewaretoken": csrf},
        headers={"X-CSRFToken": csrf},
        timeout=30,
    )
    assert response.status_code == 200, response.status_code
    document = DocumentConvention.objects.get(convention=cadre_ussel)

    def ready() -> bool:
        document.refresh_from_db()
        return document.statut == DocumentConvention.Statut.PRET

    wait_for(ready, (services["logs"] / "worker.log").read_text()[-2000:], patience=120)
    download = session.get(f"{b}/conventions/documents/{document.pk}/", timeout=30)
    assert download.status_code == 200 and download.content.startswith(b"%PDF")

    # A fiche changed on B shows at once on A's dashboard, cached until then.
    before = text(session.get(f"{a}/", timeout=30))
    response = post_form(
        session,
        b,
        f"/actions/fiches/{fiche.pk}/modifier/",
        "titre",
        titre="Halle en retard",
        maturite=FicheAction.Maturite.ENGAGEE,
        date_debut_prevue="2019-01-01",
        date_fin_prevue="2020-01-01",
    )
    assert response.status_code == 200, response.status_code
    fiche.refresh_from_db()
    assert fiche.titre == "Halle en retard" and fiche.date_fin_prevue == date(2020, 1, 1)
    after = text(session.get(f"{a}/", timeout=30))
    assert "Halle en retard" not in before and "Halle en retard" in after

    # Redis stopped: both instances keep serving; back: both still serve, the session too.
    directory, port, started = services["redis"]
    stop(started["redis"])
    for base in (a, b, services["proxy"]):
        response = session.get(f"{base}/conventions/", timeout=30)
        assert response.status_code == 200 and cadre_ussel.titre in text(response)
    started["redis"] = start_redis(directory, port)
    for base in (a, b, services["proxy"]):
        response = session.get(f"{base}/", timeout=30)
        assert response.status_code == 200 and "Halle en retard" in text(response)
