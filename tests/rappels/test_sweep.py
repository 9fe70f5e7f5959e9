"""Reminders fire exactly once: rules derived from source dates, unique sendings, claims."""

import threading
from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.db import connection

from conventions.models import Convention
from rappels.models import Frequence, Rappel
from rappels.preferences import set_frequence
from rappels.regles import latest_due
from rappels.sweep import sweep

from .conftest import TODAY, set_adhesion

pytestmark = pytest.mark.django_db


def cadre_rows(beneficiaire, recipient=None):
    rows = Rappel.objects.filter(regle="convention_cadre", objet=f"beneficiaire:{beneficiaire.pk}")
    return rows.filter(destinataire=recipient) if recipient else rows


def test_the_cadre_reminder_goes_to_its_chef_de_projet_elus_and_prefecture(
    ussel_at_12_months, cdp_ussel, elu_ussel, elu_epci, prefecture_19, prefecture_36, national
):
    sweep(TODAY)

    rows = cadre_rows(ussel_at_12_months)
    # The élus of the beneficiary: the maire of Ussel and the président of its EPCI.
    assert {r.destinataire for r in rows} == {cdp_ussel, elu_ussel, elu_epci, prefecture_19}
    assert {r.echeance for r in rows} == {TODAY}
    assert "la convention-cadre est attendue le 30 mai 2027" in rows[0].message


def test_a_second_sweep_the_same_day_or_the_next_sends_nothing_again(ussel_at_12_months, cdp_ussel):
    sweep(TODAY)
    first = cadre_rows(ussel_at_12_months, cdp_ussel).count()
    emails = len(mail.outbox)

    sweep(TODAY)
    sweep(TODAY + timedelta(days=1))

    assert cadre_rows(ussel_at_12_months, cdp_ussel).count() == first == 1
    assert len(mail.outbox) == emails  # the chef de projet's conventions: one e-mail, once


def test_due_dates_follow_the_source_date_and_a_sent_one_is_never_resent(
    ussel_at_12_months, cdp_ussel
):
    sweep(TODAY)
    # The adhésion turns out a month later: the 12-month reminder moves a month on.
    set_adhesion(ussel_at_12_months, TODAY - relativedelta(months=11))
    sweep(TODAY)
    assert cadre_rows(ussel_at_12_months, cdp_ussel).count() == 1

    sweep(TODAY + relativedelta(months=1))
    assert sorted(r.echeance for r in cadre_rows(ussel_at_12_months, cdp_ussel)) == [
        TODAY,
        TODAY + relativedelta(months=1),
    ]


def test_a_signed_convention_cadre_stops_its_reminders(ussel_at_12_months, cdp_ussel):
    Convention.objects.create(
        beneficiaire=ussel_at_12_months,
        type=Convention.Type.CADRE,
        titre="Convention-cadre",
        statut=Convention.Statut.SIGNEE,
        date_signature=TODAY - timedelta(days=3),
    )
    sweep(TODAY)
    assert not cadre_rows(ussel_at_12_months).exists()


def test_overdue_then_monthly(ussel_la_courtine, cdp_ussel):
    set_adhesion(ussel_la_courtine, TODAY - relativedelta(months=20))
    sweep(TODAY)
    (row,) = cadre_rows(ussel_la_courtine, cdp_ussel)
    assert row.echeance == TODAY  # 18 months + 2 months
    assert "était attendue" in row.message


def test_latest_due_catches_up_once_within_a_month():
    dates = [TODAY - timedelta(days=40), TODAY - timedelta(days=2), TODAY + timedelta(days=5)]
    assert latest_due(dates, TODAY) == TODAY - timedelta(days=2)
    assert latest_due(dates[:1], TODAY) is None  # too old: superseded, not sent late


def test_beat_down_three_days_sends_each_missed_reminder_once(ussel_la_courtine, cdp_ussel):
    # The 12-month reminder fell two days ago while no sweep ran (since four days ago).
    set_adhesion(ussel_la_courtine, TODAY - timedelta(days=2) - relativedelta(months=12))
    sweep(TODAY - timedelta(days=4))
    assert not cadre_rows(ussel_la_courtine).exists()

    for day in range(3):  # back, then the following days
        sweep(TODAY + timedelta(days=day))

    (row,) = cadre_rows(ussel_la_courtine, cdp_ussel)
    assert row.echeance == TODAY - timedelta(days=2)
    sent = [m for m in mail.outbox if m.to == [cdp_ussel.email]]
    assert len(sent) == 1


def test_a_sweep_rerun_after_a_crash_mid_batch_sends_the_rest_once(
    monkeypatch, ussel_at_12_months, cdp_ussel, elu_ussel, elu_epci, prefecture_19
):
    for user in (elu_ussel, elu_epci, prefecture_19):
        for categorie in ("conventions", "plans", "postes"):
            set_frequence(user, categorie, Frequence.IMMEDIAT)
    real_send = EmailMultiAlternatives.send
    calls = []

    def crash_on_second(self, *args, **kwargs):
        calls.append(self.to)
        if len(calls) == 2:
            raise ConnectionError("SMTP went away")
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(EmailMultiAlternatives, "send", crash_on_second)
    with pytest.raises(ConnectionError):
        sweep(TODAY)
    assert len(mail.outbox) == 1

    sweep(TODAY)

    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [cdp_ussel.email, elu_ussel.email, elu_epci.email, prefecture_19.email]
    )
    assert not Rappel.objects.filter(email_le__isnull=True, regle="convention_cadre").exists()


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_racing_in_two_threads_send_each_reminder_once(territoires):
    from communes.models import Beneficiaire
    from pvd.models import Role
    from tests.factories import user_with_role

    beneficiaires = list(Beneficiaire.objects.all()[:10])
    for index, beneficiaire in enumerate(beneficiaires):
        Convention.objects.filter(beneficiaire=beneficiaire, type="cadre").delete()
        set_adhesion(beneficiaire, TODAY - relativedelta(months=12))
        user = user_with_role(f"cdp-{index}@test.pvd.fr", Role.Kind.CHEF_PROJET)
        user.roles.get().beneficiaires.set([beneficiaire])
    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            barrier.wait()
            sweep(TODAY)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    rows = Rappel.objects.filter(regle="convention_cadre", destinataire__email__startswith="cdp-")
    assert rows.count() == len(beneficiaires)
    sent = [m.to[0] for m in mail.outbox if m.to[0].startswith("cdp-")]
    assert sorted(sent) == sorted(set(sent)) and len(sent) == len(beneficiaires)


def test_beat_down_three_days_sends_each_reminder_missed_on_any_of_them_once(territoires):
    from communes.models import Beneficiaire
    from pvd.models import Role
    from tests.factories import user_with_role

    # Three beneficiaries whose 12-month reminder fell on each of the three days without sweep.
    emails = []
    for days, beneficiaire in enumerate(Beneficiaire.objects.order_by("pk")[:3], start=1):
        Convention.objects.filter(beneficiaire=beneficiaire, type="cadre").delete()
        set_adhesion(beneficiaire, TODAY - timedelta(days=days) - relativedelta(months=12))
        user = user_with_role(f"cdp-down-{days}@test.pvd.fr", Role.Kind.CHEF_PROJET)
        user.roles.get().beneficiaires.set([beneficiaire])
        emails.append(user.email)
    sweep(TODAY - timedelta(days=4))  # the last sweep before the beat went down
    assert not Rappel.objects.filter(destinataire__email__in=emails).exists()

    for day in range(4):  # back today, then the following days
        sweep(TODAY + timedelta(days=day))

    rows = Rappel.objects.filter(destinataire__email__in=emails)
    assert sorted(r.echeance for r in rows) == [TODAY - timedelta(days=d) for d in (3, 2, 1)]
    assert sorted(m.to[0] for m in mail.outbox if m.to[0] in emails) == sorted(emails)


def everyone_immediate(*users) -> None:
    for user in users:
        for categorie in ("conventions", "plans", "postes"):
            set_frequence(user, categorie, Frequence.IMMEDIAT)


def test_a_beneficiary_named_with_a_line_break_stops_no_email(
    ussel_at_12_months, cdp_ussel, elu_ussel, elu_epci, prefecture_19
):
    everyone_immediate(elu_ussel, elu_epci, prefecture_19)
    ussel_at_12_months.nom = "Ussel\nBcc: x@y"
    ussel_at_12_months.save(update_fields=["nom"])

    report = sweep(TODAY)

    recipients = [cdp_ussel.email, elu_ussel.email, elu_epci.email, prefecture_19.email]
    assert sorted(m.to[0] for m in mail.outbox) == sorted(recipients)
    assert report.emails == 4
    for message in mail.outbox:
        headers = message.message()
        assert "\n" not in message.subject and message.subject.endswith("Ussel Bcc: x@y")
        assert headers["Bcc"] is None and message.recipients() == message.to
    assert not Rappel.objects.filter(email_le__isnull=True, regle="convention_cadre").exists()


def test_an_email_that_raises_is_marked_retried_up_to_a_limit_and_the_others_go(
    monkeypatch, client_for, national, ussel_at_12_months, cdp_ussel, elu_ussel, elu_epci,
    prefecture_19,
):  # fmt: skip
    import smtplib

    from django.urls import reverse

    from rappels.sweep import MAX_ATTEMPTS

    everyone_immediate(elu_ussel, elu_epci, prefecture_19)
    real_send = EmailMultiAlternatives.send

    def refuse_the_maire(self, *args, **kwargs):
        if self.to == [elu_ussel.email]:
            raise smtplib.SMTPRecipientsRefused({elu_ussel.email: (550, b"No such user")})
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(EmailMultiAlternatives, "send", refuse_the_maire)
    assert sweep(TODAY).emails == 3

    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [cdp_ussel.email, elu_epci.email, prefecture_19.email]
    )
    failed = cadre_rows(ussel_at_12_months, elu_ussel).get()
    assert failed.email_le is None and failed.email_reserve_le is None
    assert failed.email_echecs == 1 and "SMTPRecipientsRefused" in failed.email_erreur
    page = client_for(national).get(reverse("rappels:sante")).content.decode()
    assert "Envois en échec" in page and "1 courriel de rappel" in page
    assert "Travaux en échec ces dernières 24 heures (PDF, exports, bilans) : 0." in page

    # The next sweeps try it again, up to the limit, then leave it.
    for _ in range(MAX_ATTEMPTS + 2):
        sweep(TODAY)
    failed.refresh_from_db()
    assert failed.email_echecs == MAX_ATTEMPTS and failed.email_le is None
    assert len(mail.outbox) == 3
    from django.utils import timezone

    from actions.models import ExportPlan

    ExportPlan.objects.create(
        perimetre="national", requested_by=national, statut="echec", finished_at=timezone.now()
    )
    page = client_for(national).get(reverse("rappels:sante")).content.decode()
    assert f"dont 1 abandonné après {MAX_ATTEMPTS} tentatives" in page
    assert "Travaux en échec ces dernières 24 heures (PDF, exports, bilans) : 1." in page


def test_a_digest_that_raises_is_marked_and_the_others_go(
    monkeypatch, ussel_at_12_months, cdp_ussel, elu_ussel, elu_epci, prefecture_19
):
    from rappels.models import Recapitulatif

    everyone_immediate(elu_ussel)
    set_frequence(prefecture_19, "conventions", Frequence.QUOTIDIEN)
    set_frequence(cdp_ussel, "conventions", Frequence.QUOTIDIEN)
    real_send = EmailMultiAlternatives.send

    def broken_for_the_prefecture(self, *args, **kwargs):
        if self.to == [prefecture_19.email]:
            raise ValueError("a template could not render")
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(EmailMultiAlternatives, "send", broken_for_the_prefecture)
    report = sweep(TODAY)

    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [cdp_ussel.email, elu_ussel.email, elu_epci.email]
    )
    assert report.digests == 2
    digest = Recapitulatif.objects.get(destinataire=prefecture_19)
    assert digest.envoye_le is None and digest.reserve_le is None
    assert digest.echecs == 1 and "ValueError" in digest.erreur
    # Its reminder is given back, and the next sweep sends it once the fault is gone.
    assert cadre_rows(ussel_at_12_months, prefecture_19).get().recapitulatif_id is None
    monkeypatch.undo()
    sweep(TODAY)
    assert [m.to[0] for m in mail.outbox].count(prefecture_19.email) == 1
