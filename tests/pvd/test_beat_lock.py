"""One beat sends the periodic tasks: a PostgreSQL advisory lock (pvd/beat.py)."""

import pytest
from django.conf import settings
from django.db import connection

from pvd.beat import BeatLock, GuardedScheduler
from pvd.celery import app
from tests.servers import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="an advisory lock of PostgreSQL"),
]


@pytest.fixture
def locks():
    made = []

    def make() -> BeatLock:
        made.append(BeatLock())
        return made[-1]

    yield make
    for lock in made:
        lock.release()


def test_the_beat_scheduler_is_the_guarded_one():
    assert settings.CELERY_BEAT_SCHEDULER == "pvd.beat:GuardedScheduler"


def test_a_second_beat_waits_until_the_first_is_gone(locks):
    first, second = locks(), locks()
    assert first.acquire() and first.held()
    assert not second.acquire() and not second.held()
    first.release()  # the process ends: its connection, and the lock, go
    # PostgreSQL ends the session (and frees the lock) a moment after the client leaves.
    wait_for(second.acquire, "the lock was not released with its connection", patience=10)
    assert second.held()


def test_a_beat_that_lost_its_lock_stops(locks, tmp_path):
    scheduler = GuardedScheduler(app, schedule_filename=str(tmp_path / "schedule"), lazy=True)
    scheduler.lock = locks()
    assert scheduler.lock.acquire()
    scheduler.lock.connection.close()  # the connection dropped: PostgreSQL released the lock
    other = locks()
    wait_for(other.acquire, "the lock was not released with its connection", patience=10)
    with pytest.raises(SystemExit):
        scheduler.tick()
