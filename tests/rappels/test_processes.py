"""Sweeps in separate OS processes: two Celery workers given the sweep twice (as two beat
processes would enqueue it), two sweeps racing, and one killed with its e-mails claimed."""

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import connection
from django.utils import timezone

from communes.models import Beneficiaire
from conventions.models import Convention
from pvd.models import Role
from rappels.models import Rappel
from rappels.sweep import LEASE, sweep
from tests.factories import user_with_role

from .conftest import TODAY, set_adhesion

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ten_chefs_de_projet(territoires) -> list[str]:
    """Ten beneficiaries whose convention-cadre reminder falls on TODAY, a chef de projet each
    (conventions: one immediate e-mail each)."""
    emails = []
    for index, beneficiaire in enumerate(Beneficiaire.objects.order_by("pk")[:10]):
        Convention.objects.filter(beneficiaire=beneficiaire, type="cadre").delete()
        set_adhesion(beneficiaire, TODAY - relativedelta(months=12))
        user = user_with_role(f"cdp-{index}@test.pvd.fr", Role.Kind.CHEF_PROJET)
        user.roles.get().beneficiaires.set([beneficiaire])
        emails.append(user.email)
    return emails


def process_env(tmp_path: Path, **env) -> dict:
    db = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.rappels.settings_processes",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "SENT_FILE": str(tmp_path / "sent"),
        **env,
    }


def start_sweep(tmp_path: Path, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.rappels.sweep_process", TODAY.isoformat()],
        cwd=ROOT,
        env=process_env(tmp_path, **env),
    )


def sent(tmp_path: Path) -> list[str]:
    path = tmp_path / "sent"
    return path.read_text().split() if path.exists() else []


@pytest.mark.skipif(not settings.REDIS_URL, reason="Celery workers need the Redis broker")
def test_two_celery_worker_processes_given_the_sweep_twice_send_each_reminder_once(
    tmp_path, territoires
):
    from pvd.celery import app
    from rappels.tasks import sweep_reminders

    # The cadre reminder of ten beneficiaries falls today (the workers sweep the real today).
    emails = []
    for index, beneficiaire in enumerate(Beneficiaire.objects.order_by("pk")[:10]):
        Convention.objects.filter(beneficiaire=beneficiaire, type="cadre").delete()
        set_adhesion(beneficiaire, timezone.localdate() - relativedelta(months=12))
        user = user_with_role(f"cdp-{index}@test.pvd.fr", Role.Kind.CHEF_PROJET)
        user.roles.get().beneficiaires.set([beneficiaire])
        emails.append(user.email)
    queue = f"rappels-test-{uuid.uuid4().hex[:8]}"
    names = [f"{queue}-{n}@localhost" for n in (1, 2)]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "pvd",
                "worker",
                "--pool=solo",
                "-Q",
                queue,
                "-n",
                name,
                "-l",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=process_env(tmp_path),
        )  # fmt: skip
        for name in names
    ]
    app.conf.task_always_eager = False
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = app.control.ping(destination=names, timeout=0.5)
            if len(replies) == 2:
                break
        assert len(replies) == 2, "the two workers did not start"
        # What two beat processes do at the hour: enqueue the sweep twice. Each worker takes
        # one (prefetch 1, late acknowledgement) and both sweep at once.
        results = [sweep_reminders.apply_async(queue=queue) for _ in range(2)]
        reports = [result.get(timeout=120) for result in results]
    finally:
        app.conf.task_always_eager = True
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)

    assert sum(report["recorded"] for report in reports) >= 10
    assert sorted(e for e in sent(tmp_path) if e.startswith("cdp-")) == sorted(emails)
    assert Rappel.objects.filter(destinataire__email__in=emails).count() == 10


def test_two_sweep_processes_racing_send_each_reminder_once(tmp_path, ten_chefs_de_projet):
    go = tmp_path / "go"
    processes = [start_sweep(tmp_path, GO_FILE=str(go)) for _ in range(2)]
    time.sleep(3)  # both have loaded Django and wait for the start
    go.touch()
    assert [p.wait(timeout=120) for p in processes] == [0, 0]

    # Each chef de projet's e-mail once, and the préfecture of Indre's digest once.
    assert sorted(sent(tmp_path)) == sorted([*ten_chefs_de_projet, "prefecture-36@test.pvd.fr"])
    rows = Rappel.objects.filter(destinataire__email__in=ten_chefs_de_projet)
    assert rows.count() == 10
    assert not rows.filter(email_le__isnull=True).exists()


def test_a_killed_workers_claims_are_sent_once_after_the_lease(
    tmp_path, ten_chefs_de_projet, time_machine
):
    worker = start_sweep(tmp_path, HANG_AFTER="3")
    deadline = time.monotonic() + 120
    while len(sent(tmp_path)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # it is now stuck on the fourth e-mail, the other seven claimed
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    assert len(sent(tmp_path)) == 3
    rows = Rappel.objects.filter(destinataire__email__in=ten_chefs_de_projet)
    assert rows.filter(email_le__isnull=False).count() == 3
    assert rows.filter(email_le__isnull=True, email_reserve_le__isnull=False).count() == 7

    # Within the lease, another sweep leaves the dead worker's claims alone.
    time_machine.move_to(timezone.now() + LEASE - timedelta(minutes=1))
    assert sweep(TODAY).emails == 0

    # After it, the next sweep sends the seven, and those already sent are not sent again.
    time_machine.move_to(timezone.now() + timedelta(minutes=2))
    from django.core import mail

    assert sweep(TODAY).emails == 7
    again = [m.to[0] for m in mail.outbox if m.to[0].startswith("cdp-")]
    assert sorted(sent(tmp_path) + again) == sorted(ten_chefs_de_projet)
    assert sweep(TODAY).emails == 0
    assert not rows.filter(email_le__isnull=True).exists()
