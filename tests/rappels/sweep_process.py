"""A reminders sweep in an OS process of its own, for the tests that race or kill sweeps.

Run as ``python -m tests.rappels.sweep_process YYYY-MM-DD`` with ``DATABASE_URL`` naming the
test database (settings: tests/rappels/settings_processes.py, which Celery workers started by
the tests use too). Every e-mail it sends is appended, one line per recipient, to ``SENT_FILE``
(shared by all the processes of a test). With ``GO_FILE`` it waits for that file first, so
that several processes start their sweep together; with ``HANG_AFTER=n`` it sends n e-mails
then hangs on the next one, like a worker stuck on its SMTP server until it is killed.
"""

import os
import sys
import time
from datetime import date

from django.core.mail.backends.base import BaseEmailBackend


class AppendBackend(BaseEmailBackend):
    sent = 0

    def send_messages(self, messages) -> int:
        hang_after = int(os.environ.get("HANG_AFTER", "0"))
        for message in messages:
            if hang_after and AppendBackend.sent >= hang_after:
                time.sleep(3600)
            with open(os.environ["SENT_FILE"], "a", encoding="utf-8") as sent:
                sent.write(f"{message.to[0]}\n")
            AppendBackend.sent += 1
        return len(messages)


def main() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.rappels.settings_processes"
    import django

    django.setup()
    go = os.environ.get("GO_FILE")
    while go and not os.path.exists(go):
        time.sleep(0.005)
    from rappels.sweep import sweep

    sweep(date.fromisoformat(sys.argv[1]))


if __name__ == "__main__":
    main()
