"""Demonstration reminders: the first sweep of a demo base catches up every open situation."""

from datetime import timedelta

from django.utils import timezone

from .sweep import record

# On a demo base every situation still open gives its latest reminder, however old, so that
# the demo accounts see notifications and a digest preview whatever the day (no e-mail sent).
DEMO_RATTRAPAGE = timedelta(days=3650)


def seed_demo_rappels(stdout) -> None:
    due, recorded = record(timezone.localdate(), DEMO_RATTRAPAGE)
    stdout.write(f"Rappels de démonstration : {recorded} notification(s) pour {due} échéance(s).")
