"""One beat for the whole service, whatever runs: a PostgreSQL advisory lock.

Celery beat sends the periodic tasks (settings ``CELERY_BEAT_SCHEDULE``); two beats would send
each of them twice. docker-compose.yml runs one, but a second one started by mistake (a
replica, a second host, a deploy that overlaps) must not send anything: the scheduler
(``GuardedScheduler``, settings ``CELERY_BEAT_SCHEDULER``) holds a session advisory lock on a
connection of its own. A second beat waits, sending nothing, and takes over once the first one
is gone: PostgreSQL releases the lock when its connection ends (process killed, host lost).
Each tick checks the lock is still held; a beat that lost it (its connection dropped) exits,
and its restart policy brings it back to wait for the lock. On SQLite (`make run`, one
machine) there is no lock: one process anyway.

The tasks themselves can run twice without harm (claims in the database); the lock keeps the
schedule from doubling the work and the e-mails' pace.
"""

import logging
import time

from celery.beat import PersistentScheduler
from django.db import connections

logger = logging.getLogger(__name__)

# pg_advisory_lock's key: "PVDbeat" as a number, unique to this purpose in the database.
LOCK_KEY = int.from_bytes(b"PVDbeat", "big")
WAIT = 5  # seconds between two attempts of a beat waiting for the lock


class BeatLock:
    """The advisory lock, on a database connection opened for it alone."""

    def __init__(self) -> None:
        self.connection = connections.create_connection("default")

    @property
    def supported(self) -> bool:
        return self.connection.vendor == "postgresql"

    def _value(self, sql: str) -> bool:
        self.connection.ensure_connection()
        self.connection.set_autocommit(True)
        with self.connection.cursor() as cursor:
            cursor.execute(sql, [LOCK_KEY])
            return bool(cursor.fetchone()[0])

    def acquire(self) -> bool:
        """Take the lock if no other beat holds it."""
        return self._value("SELECT pg_try_advisory_lock(%s)")

    def held(self) -> bool:
        """Whether this connection still holds the lock (False once the connection dropped)."""
        try:
            return self._value(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                "AND pid = pg_backend_pid() AND granted "
                "AND ((classid::bigint << 32) | objid::bigint) = %s)"
            )
        except Exception:
            logger.exception("Could not check the beat lock")
            return False

    def release(self) -> None:
        self.connection.close()  # the session's advisory locks go with it

    def wait(self) -> None:
        """Block until this process holds the lock."""
        warned = False
        while not self.acquire():
            if not warned:
                logger.warning("Another beat holds the lock: this one waits and sends nothing.")
                warned = True
            time.sleep(WAIT)
        logger.info("Beat lock taken: this beat sends the periodic tasks.")


class GuardedScheduler(PersistentScheduler):
    """Celery's default scheduler, run only by the beat that holds the lock."""

    def setup_schedule(self) -> None:
        self.lock = BeatLock()
        if self.lock.supported:
            self.lock.wait()
        super().setup_schedule()

    def tick(self, *args, **kwargs):
        if self.lock.supported and not self.lock.held():
            logger.error("Beat lock lost: this beat stops so that no other one runs alongside.")
            raise SystemExit(1)
        return super().tick(*args, **kwargs)

    def close(self) -> None:
        super().close()
        self.lock.release()
