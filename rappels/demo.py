"""Demonstration reminders: the first sweep of a demo base catches up every open situation."""

from datetime import timedelta

from django.utils import timezone

from pvd.french import compte

from .sweep import record

# On a demo base every situation still open gives its latest reminder, however old, so that
# the demo accounts see notifications and a digest preview whatever the day (no e-mail sent).
DEMO_RATTRAPAGE = timedelta(days=3650)


def seed_demo_rappels(stdout) -> None:
    due, recorded = record(timezone.localdate(), DEMO_RATTRAPAGE)
    notifications = compte(recorded, "notification", "notifications", "aucune notification")
    echeances = compte(due, "échéance", "échéances", "aucune échéance")
    stdout.write(f"Rappels de démonstration : {notifications} pour {echeances}.")
