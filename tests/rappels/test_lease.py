"""A claim holds for a lease: a worker that dies after claiming does not lose the e-mails."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from actions.models import FicheAction, ensure_axes
from rappels import sweep as sweep_module
from rappels.models import Rappel, Recapitulatif
from rappels.sweep import LEASE, claim, record, sweep

from .conftest import TODAY

pytestmark = pytest.mark.django_db


@pytest.fixture
def morning(time_machine):
    time_machine.move_to(datetime(2026, 11, 30, 8, 0, tzinfo=ZoneInfo("Europe/Paris")))
    return time_machine


def later(time_machine, delta: timedelta) -> None:
    time_machine.move_to(timezone.now() + delta)


def sent_to(user) -> int:
    return [m.to for m in mail.outbox].count([user.email])


def test_an_email_claimed_by_a_dead_worker_is_sent_once_after_the_lease(
    morning, ussel_at_12_months, cdp_ussel
):
    record(TODAY)
    (rappel,) = Rappel.objects.filter(destinataire=cdp_ussel, regle="convention_cadre")
    assert claim([rappel.pk]) == [rappel.pk]  # the worker claims it, then dies

    later(morning, LEASE - timedelta(minutes=1))
    sweep(TODAY)
    assert sent_to(cdp_ussel) == 0  # still its claim: no second sender

    later(morning, timedelta(minutes=2))
    sweep(TODAY)
    assert sent_to(cdp_ussel) == 1
    rappel.refresh_from_db()
    assert rappel.email_le is not None

    later(morning, LEASE * 4)  # the finished sending is never taken again
    sweep(TODAY)
    assert sent_to(cdp_ussel) == 1


def test_a_claim_under_its_lease_cannot_be_taken_twice(morning, ussel_at_12_months, cdp_ussel):
    record(TODAY)
    ids = list(Rappel.objects.values_list("pk", flat=True))
    assert sorted(claim(ids)) == sorted(ids)
    assert claim(ids) == []
    later(morning, LEASE + timedelta(seconds=1))
    assert sorted(claim(ids)) == sorted(ids)


def test_a_digest_claimed_by_a_dead_worker_is_sent_once_after_the_lease(
    morning, monkeypatch, ussel_la_courtine, cdp_ussel
):
    ensure_axes(ussel_la_courtine)
    FicheAction.objects.create(
        beneficiaire=ussel_la_courtine,
        axe=ussel_la_courtine.axes.get(numero=1),
        reference="1.9",
        titre="Halle couverte",
        date_fin_prevue=TODAY - timedelta(days=3),
    )

    def killed(self, *args, **kwargs):
        raise SystemExit("worker killed")

    with monkeypatch.context() as patch:
        # Killed outright: its e-mail never leaves, and its cleanup never runs.
        patch.setattr(EmailMultiAlternatives, "send", killed)
        patch.setattr(sweep_module, "release_digests", lambda digests: None)
        with pytest.raises(SystemExit):
            sweep(TODAY)
    digest = Recapitulatif.objects.get(destinataire=cdp_ussel)
    assert (digest.envoye_le, digest.rappels.count()) == (None, 1)

    later(morning, timedelta(minutes=5))
    sweep(TODAY)
    assert sent_to(cdp_ussel) == 0

    # The next day, past the lease: yesterday's digest goes, once, with its reminder.
    later(morning, timedelta(days=1))
    sweep(TODAY + timedelta(days=1))
    sweep(TODAY + timedelta(days=1))
    (email,) = [m for m in mail.outbox if m.to == [cdp_ussel.email]]
    assert "Halle couverte" in email.body
    digest.refresh_from_db()
    assert digest.envoye_le is not None


def test_an_email_sent_again_after_the_lease_keeps_its_message_id(
    morning, monkeypatch, ussel_at_12_months, cdp_ussel
):
    real_send = EmailMultiAlternatives.send

    def sent_then_killed(self, *args, **kwargs):
        real_send(self, *args, **kwargs)  # the SMTP server took it…
        raise SystemExit("worker killed")  # …and the worker died before marking it sent

    with monkeypatch.context() as patch:
        patch.setattr(EmailMultiAlternatives, "send", sent_then_killed)
        patch.setattr(sweep_module, "release", lambda ids: None)
        with pytest.raises(SystemExit):
            sweep(TODAY)
    later(morning, LEASE + timedelta(minutes=1))
    sweep(TODAY)

    first, again = [m for m in mail.outbox if m.to == [cdp_ussel.email]]
    (rappel,) = Rappel.objects.filter(destinataire=cdp_ussel, regle="convention_cadre")
    assert first.message()["Message-ID"] == again.message()["Message-ID"]
    assert again.message()["Message-ID"] == f"<pvd-rappel-{rappel.pk}@localhost>"


class FakeClock:
    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_claims_still_being_sent_are_renewed_by_time_not_per_email(
    morning, ussel_at_12_months, cdp_ussel, elu_ussel, prefecture_19
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    record(TODAY)
    ids = sorted(Rappel.objects.values_list("pk", flat=True))
    assert len(ids) >= 3
    claimed, claimed_at = claim(ids, with_time=True)
    # One of them is another worker's claim now (ours expired and it took it).
    other = timezone.now() + timedelta(seconds=1)
    Rappel.objects.filter(pk=ids[0]).update(email_reserve_le=other)
    step = sweep_module.RENEW_EVERY.total_seconds() / 4
    renew = sweep_module._Renewal(Rappel, "email_reserve_le", claimed_at, clock=FakeClock(step))

    later(morning, timedelta(minutes=1))
    with CaptureQueriesContext(connection) as queries:
        for _ in range(8):  # eight e-mails sent over two renewal periods
            renew(ids)

    assert len(queries) == 2  # two renewals, not eight
    assert Rappel.objects.get(pk=ids[0]).email_reserve_le == other
    renewed = set(Rappel.objects.filter(pk__in=ids[1:]).values_list("email_reserve_le", flat=True))
    assert len(renewed) == 1 and renewed.pop() >= claimed_at + timedelta(minutes=1)
