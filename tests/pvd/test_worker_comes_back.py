"""A worker that always comes back: Redis stops while the worker runs a job, comes back, and
the next job is done without anyone restarting the worker.

The test runs its own redis-server (port 9648) and a real Celery worker process (prefork, as
docker-compose.yml runs it) with the shipped settings (tests/pvd/settings_worker.py adds only
the test's tasks, tests/pvd/worker_tasks.py). Each task leaves a file when it ends.
"""

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.db import connection

from tests.pvd.worker_tasks import quick, slow

PORT = 9648
URL = f"redis://127.0.0.1:{PORT}/0"
ROOT = Path(__file__).resolve().parents[2]
# How long the test waits for a thing to happen before it gives up (a bound, not a measure):
# the issue asks for jobs processed again within a minute of Redis's return.
PATIENCE = 60

pytestmark = [
    pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed"),
    pytest.mark.django_db(transaction=True),
]


def start_redis(directory: Path) -> subprocess.Popen:
    server = subprocess.Popen(
        ["redis-server", "--port", str(PORT), "--save", "", "--appendonly", "no"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis.from_url(URL)
    wait_for(lambda: _pings(client), "redis-server did not start")
    return server


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def wait_for(condition, message: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


@contextmanager
def publisher():
    """The Celery app of this process, publishing to the test's Redis (fresh connections)."""
    from pvd.celery import app

    saved = (app.conf.broker_url, app.conf.task_always_eager, app._pool, app.amqp._producer_pool)
    app.conf.broker_url, app.conf.task_always_eager = URL, False
    app._pool = app.amqp._producer_pool = None
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.task_always_eager, app._pool, app.amqp._producer_pool = saved


def test_redis_stopped_while_a_job_runs_then_back_the_next_job_is_done(tmp_path):
    db = connection.settings_dict
    server = start_redis(tmp_path)
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "pvd", "worker", "--concurrency", "2",
            "-n", f"comes-back-{os.getpid()}@localhost", "-l", "INFO",
            "--without-gossip", "--without-mingle",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.pvd.settings_worker",
            "REDIS_URL": URL,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        },
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "worker.log", "w"),  # noqa: SIM115 - closed with the process
    )  # fmt: skip
    try:
        # A job the worker is running when Redis stops.
        with publisher():
            slow.delay(str(tmp_path / "job-1"), 4)
        wait_for((tmp_path / "job-1.started").exists, "the worker never started the job")
        server.terminate()
        server.wait()
        wait_for((tmp_path / "job-1").exists, "the running job did not finish its work")

        server = start_redis(tmp_path)
        with publisher():
            quick.delay(str(tmp_path / "job-2"))
        wait_for((tmp_path / "job-2").exists, "the next job was not done after Redis came back")
        # The same worker process did it: it reconnected, it did not exit.
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        assert "Unrecoverable error" not in (tmp_path / "worker.log").read_text()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        server.kill()
        server.wait()
