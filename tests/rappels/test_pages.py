"""The notification centre, the preferences page, digests, unsubscribe, the service health page."""

from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from pvd.models import Heartbeat
from rappels.emails import unsubscribe_token
from rappels.models import Frequence, Preference, Rappel, Recapitulatif
from rappels.preferences import set_frequence
from rappels.sweep import sweep

from .conftest import TODAY

pytestmark = pytest.mark.django_db


@pytest.fixture
def notified(ussel_at_12_months, cdp_ussel, elu_ussel, prefecture_19):
    sweep(TODAY)
    return Rappel.objects.get(destinataire=cdp_ussel, regle="convention_cadre")


def test_the_header_counts_unread_and_the_list_links_to_the_object(client_for, cdp_ussel, notified):
    client = client_for(cdp_ussel)
    unread = Rappel.objects.for_user(cdp_ussel).non_lus().count()
    page = client.get(reverse("rappels:list")).content.decode()
    assert f'{unread}<span class="fr-sr-only"> non lue' in page
    assert notified.message in page

    response = client.post(reverse("rappels:mark-read", args=[notified.pk]), {"ouvrir": "1"})
    assert response.url == reverse("communes:beneficiaire-detail", args=[notified.beneficiaire_id])
    notified.refresh_from_db()
    assert notified.lue_le is not None


def test_mark_all_read_touches_only_mine(client_for, cdp_ussel, elu_ussel, notified):
    client_for(cdp_ussel).post(reverse("rappels:mark-all-read"))
    assert not Rappel.objects.for_user(cdp_ussel).non_lus().exists()
    assert Rappel.objects.for_user(elu_ussel).non_lus().exists()


def test_another_persons_notification_is_a_404(client_for, elu_ussel, notified):
    client = client_for(elu_ussel)
    assert client.post(reverse("rappels:mark-read", args=[notified.pk])).status_code == 404
    notified.refresh_from_db()
    assert notified.lue_le is None


def test_preferences_page_saves_a_weekly_digest_and_refuses_nonsense(client_for, cdp_ussel):
    client = client_for(cdp_ussel)
    page = client.get(reverse("rappels:preferences")).content.decode()
    assert "Préférences de notification" in page
    data = {"conventions": "hebdomadaire", "plans": "hebdomadaire", "postes": "aucun"}
    data["gouvernance"] = "quotidien"
    client.post(reverse("rappels:preferences"), data)
    saved = Preference.objects.filter(utilisateur=cdp_ussel).values_list("categorie", "frequence")
    assert dict(saved) == data

    response = client.post(reverse("rappels:preferences"), {**data, "postes": "<script>"})
    assert "Choisissez une des fréquences proposées." in response.content.decode()
    assert Preference.objects.get(utilisateur=cdp_ussel, categorie="postes").frequence == "aucun"


def test_a_weekly_digest_groups_by_beneficiary_once_per_week(
    ussel_at_12_months, le_blanc, cdp_ussel, prefecture_19
):
    from dateutil.relativedelta import relativedelta

    from .conftest import set_adhesion

    cdp_ussel.roles.get().beneficiaires.add(le_blanc)
    set_adhesion(le_blanc, TODAY - relativedelta(months=12))
    for categorie in ("conventions", "plans", "postes"):
        set_frequence(cdp_ussel, categorie, Frequence.HEBDOMADAIRE)

    sweep(TODAY)  # a Monday
    sweep(TODAY + timedelta(days=1))

    (digest,) = [m for m in mail.outbox if m.to == [cdp_ussel.email]]
    assert "récapitulatif hebdomadaire" in digest.subject
    assert digest.body.index("Le Blanc") < digest.body.index("Ussel – La Courtine")
    html = digest.alternatives[0][0]
    assert "<h2>Ussel – La Courtine</h2>" in html
    assert digest.extra_headers["List-Unsubscribe"].startswith(
        "<http://localhost:8000/notifications/"
    )
    assert Recapitulatif.objects.filter(destinataire=cdp_ussel).count() == 1


def test_the_unsubscribe_link_works_logged_out_and_refuses_a_forged_one(client, cdp_ussel):
    token = unsubscribe_token(cdp_ussel.pk, ["conventions"])
    url = reverse("rappels:desabonnement", args=[token])
    assert "Me désabonner" in client.get(url).content.decode()
    assert not Preference.objects.exists()  # a GET (a mail scanner) changes nothing

    response = client.post(url)
    assert "C’est fait" in response.content.decode()
    assert Preference.objects.get(utilisateur=cdp_ussel, categorie="conventions").frequence == (
        Frequence.AUCUN
    )
    forged = reverse("rappels:desabonnement", args=[token[:-2] + "xx"])
    assert client.post(forged).status_code == 400


def test_hostile_text_is_escaped_in_the_digest_html(ussel_at_12_months, cdp_ussel):
    ussel_at_12_months.nom = "<img src=x onerror=alert(1)>"
    ussel_at_12_months.save()
    set_frequence(cdp_ussel, "conventions", Frequence.QUOTIDIEN)
    sweep(TODAY)
    (digest,) = [m for m in mail.outbox if m.to == [cdp_ussel.email]]
    assert "<img" not in digest.alternatives[0][0]


def test_an_email_through_a_real_smtp_server(ussel_at_12_months, cdp_ussel):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message):
            received.append(message)

    controller = Controller(Keep(), hostname="127.0.0.1", port=9901)
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=9901,
            EMAIL_USE_TLS=False,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
        ):
            sweep(TODAY)
    finally:
        controller.stop()

    (message,) = [m for m in received if m["To"] == cdp_ussel.email]
    assert "List-Unsubscribe" in message and message["List-Unsubscribe-Post"]
    parts = {part.get_content_type(): part for part in message.walk()}
    assert "convention-cadre" in parts["text/plain"].get_payload(decode=True).decode()
    assert "text/html" in parts


def test_service_health_is_for_national_staff_and_turns_red_when_the_sweep_stops(
    client_for, national, cdp_ussel, settings, monkeypatch
):
    from pvd import health

    assert client_for(cdp_ussel).get(reverse("rappels:sante")).status_code == 403
    from rappels.tasks import sweep_reminders

    sweep_reminders.delay()
    settings.CELERY_TASK_ALWAYS_EAGER = False  # as in production: a worker and a beat
    monkeypatch.setattr(health, "check_worker", lambda redis: health.Check("worker", health.OK))
    heartbeat = Heartbeat.objects.get(task="rappels.tasks.sweep_reminders")
    assert heartbeat.period == timedelta(hours=1)
    client = client_for(national)
    page = client.get(reverse("rappels:sante")).content.decode()
    assert "rappels.tasks.sweep_reminders" in page

    # The sweep stops: three hours without a success, while the beat runs the others.
    Heartbeat.objects.filter(pk=heartbeat.pk).update(
        last_success=timezone.now() - timedelta(hours=3)
    )
    Heartbeat.objects.update_or_create(
        task="pvd.tasks.fail_stalled_jobs",
        defaults={"last_success": timezone.now(), "period": timedelta(minutes=1)},
    )
    readiness = client.get(reverse("portail:readyz"))
    assert readiness.status_code == 200  # pages are served: no load balancer pulls the site
    page = client.get(reverse("rappels:sante")).content.decode()
    assert "Le service est dégradé" in page and "En retard" in page
    assert "Tâche sweep-reminders : n&#x27;a pas abouti à temps" in page


def test_a_sweep_failing_on_smtp_is_reported_failing_with_smtp_as_its_cause(
    client_for, national, ussel_at_12_months, cdp_ussel, settings, monkeypatch
):
    from pvd import health
    from rappels.tasks import sweep_reminders

    set_frequence(cdp_ussel, "conventions", Frequence.IMMEDIAT)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1  # refused at once
    result = sweep_reminders.apply(throw=False)  # as a worker runs it: the failure is kept

    assert result.failed() and isinstance(result.result, OSError)

    heartbeat = Heartbeat.objects.get(task="rappels.tasks.sweep_reminders")
    assert heartbeat.failing and heartbeat.failure_cause == "SMTP"
    settings.CELERY_TASK_ALWAYS_EAGER = False  # as in production: a worker and a beat
    monkeypatch.setattr(health, "check_worker", lambda redis: health.Check("worker", health.OK))
    Heartbeat.objects.update_or_create(
        task="pvd.tasks.fail_stalled_jobs",
        defaults={"last_success": timezone.now(), "period": timedelta(minutes=1)},
    )
    page = client_for(national).get(reverse("rappels:sante")).content.decode()
    assert "Tâche sweep-reminders : SMTP — échec le" in page
    assert "Beat : ok" in page and "Worker : ok" in page


def test_the_home_lists_the_users_own_unread_reminders_for_the_beneficiaries_in_one_query(
    django_assert_num_queries, ussel_at_12_months, le_blanc, elu_ussel, cdp_ussel, prefecture_36
):
    from rappels.prochains import rappels
    from rappels.sweep import record

    record(TODAY)
    with django_assert_num_queries(1):
        rows = rappels(elu_ussel, [ussel_at_12_months.pk, le_blanc.pk])
    assert [r.regle for r in rows] == ["convention_cadre"]
    assert "la convention-cadre est attendue" in rows[0].message
    # Another territory's people, or another beneficiary asked for: nothing.
    assert rappels(prefecture_36, [ussel_at_12_months.pk]) == []
    assert rappels(elu_ussel, [le_blanc.pk]) == []
    # A read reminder leaves the home (the notifications page keeps it); a foreign link is
    # never followed.
    Rappel.objects.filter(pk=rows[0].pk).update(lue_le=timezone.now())
    older = Rappel.objects.create(
        regle="fiche_en_retard",
        categorie="plans",
        objet="fiche:1",
        echeance=TODAY - timedelta(days=9),
        destinataire=elu_ussel,
        beneficiaire=ussel_at_12_months,
        message="Une fiche en retard",
        lien="https://evil.example/",
    )
    assert rappels(elu_ussel, [ussel_at_12_months.pk]) == [older]
    assert rappels(elu_ussel, [ussel_at_12_months.pk])[0].lien == ""
