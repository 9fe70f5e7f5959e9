"""The push to the national projects hub, against a fake hub started here on 127.0.0.1."""

import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import TestCase

from actions.models import FicheAction, Financeur, LigneFinancement
from api import hub
from api.models import EnvoiFiche
from api.tasks import push_hub
from communes.models import Beneficiaire
from pvd.models import Heartbeat
from tests.opendata.conftest import fiche


class FakeHub(ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.received: list[dict] = []
        self.headers_seen: list[dict] = []
        self.failures_to_send = 0  # answer 503 this many times first

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/projets"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server: FakeHub = self.server
        server.headers_seen.append(dict(self.headers))
        if server.failures_to_send:
            server.failures_to_send -= 1
            self.send_response(503)
            self.end_headers()
            return
        server.received.append(json.loads(body))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": "x"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_hub(settings):
    server = FakeHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.PVD_HUB_URL = server.url
    settings.PVD_HUB_KEY = "cle-du-hub"
    yield server
    server.shutdown()
    server.server_close()


def committed(action):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return action()


def ussel_fiche(**fields) -> FicheAction:
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    return committed(lambda: fiche(ussel, "1.1", 200000, **fields))


def test_off_by_default(territoires, settings):
    assert settings.PVD_HUB_URL == "" and not hub.configured()
    ussel_fiche()
    assert not EnvoiFiche.objects.exists()
    assert push_hub() == {"envoyees": 0, "echecs": 0}


def test_a_changed_fiche_is_sent_with_the_hub_vocabulary(fake_hub, territoires):
    created = ussel_fiche(
        titre="Requalification de la place du marché",
        maturite=FicheAction.Maturite.ENGAGEE,
        date_debut_prevue=date(2025, 3, 1),
        date_fin_prevue=date(2027, 6, 30),
        maitre_ouvrage_type=FicheAction.MaitreOuvrage.COMMUNE,
    )
    assert EnvoiFiche.objects.get(fiche=created).a_envoyer
    assert push_hub() == {"envoyees": 1, "echecs": 0}
    [projet] = fake_hub.received
    assert projet == {
        "nom": "Requalification de la place du marché",
        "externalId": f"pvd-fiche-{created.pk}",
        "description": "",
        "porteur": {"type": "Commune"},
        "budgetPrevisionnel": 200000.0,
        "dateDebutPrevisionnelle": "2025-03-01",
        "phase": "Opération",
        "phaseStatut": "En cours",
        "programme": "Petites villes de demain",
        "collectivites": [
            {"type": "Commune", "code": "19275"},
            {"type": "Commune", "code": "23067"},
            {"type": "EPCI", "code": "200066744"},
        ],
    }
    assert fake_hub.headers_seen[0]["Authorization"] == "Bearer cle-du-hub"
    assert not EnvoiFiche.objects.get(fiche=created).a_envoyer
    # Nothing changed: nothing sent again.
    assert push_hub() == {"envoyees": 0, "echecs": 0}
    # A new financing line is a change of the fiche: sent again.
    committed(
        lambda: LigneFinancement.objects.create(
            fiche=created, financeur=Financeur.objects.get(nom="DSIL"), montant=1000
        )
    )
    assert push_hub()["envoyees"] == 1
    assert len(fake_hub.received) == 2
    # So is a change of its communes.
    committed(lambda: created.communes.set(["19275"]))
    assert push_hub()["envoyees"] == 1
    assert fake_hub.received[-1]["collectivites"][0] == {"type": "Commune", "code": "19275"}
    assert len(fake_hub.received[-1]["collectivites"]) == 2


@pytest.mark.parametrize(
    ("fields", "phase", "statut"),
    [
        ({}, "Idée", "En cours"),
        ({"maturite": "maturation"}, "Étude", "En cours"),
        ({"maturite": "livree"}, "Opération", "Terminé"),
        ({"maturite": "abandonnee"}, "Idée", "Abandonné"),
        ({"maturite": "engagee", "date_fin_prevue": date(2020, 1, 1)}, "Opération", "En retard"),
    ],
)
def test_maturity_and_progress_map_to_phase(fake_hub, territoires, fields, phase, statut):
    ussel_fiche(**fields)
    push_hub()
    assert (fake_hub.received[0]["phase"], fake_hub.received[0]["phaseStatut"]) == (phase, statut)


def test_a_server_error_is_retried(fake_hub, territoires):
    fake_hub.failures_to_send = 2
    ussel_fiche()
    assert push_hub() == {"envoyees": 1, "echecs": 0}
    assert len(fake_hub.headers_seen) == 3


def test_a_fiche_the_hub_keeps_refusing_stays_marked_for_the_next_run(fake_hub, territoires):
    fake_hub.failures_to_send = 100
    created = ussel_fiche()
    assert push_hub() == {"envoyees": 0, "echecs": 1}
    envoi = EnvoiFiche.objects.get(fiche=created)
    assert (envoi.a_envoyer, envoi.tentatives, envoi.erreur) == (True, 1, "HTTP 503")
    fake_hub.failures_to_send = 0
    assert push_hub() == {"envoyees": 1, "echecs": 0}
    envoi.refresh_from_db()
    assert (envoi.a_envoyer, envoi.tentatives, envoi.erreur) == (False, 0, "")


def test_an_unreachable_hub_is_a_failure_not_a_crash(territoires, settings):
    settings.PVD_HUB_URL, settings.PVD_HUB_KEY = "http://127.0.0.1:9/projets", "k"
    created = ussel_fiche()
    assert push_hub() == {"envoyees": 0, "echecs": 1}
    assert EnvoiFiche.objects.get(fiche=created).erreur == "ConnectionError"


def test_the_push_records_its_heartbeat(fake_hub, territoires):
    push_hub.apply()
    assert Heartbeat.objects.get(task="api.tasks.push_hub").last_success is not None
