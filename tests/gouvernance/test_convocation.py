"""The convocation: one e-mail per member with an address, through a real SMTP server, with
an invitation that the ``icalendar`` package reads back (RFC 5545)."""

from datetime import UTC, datetime

import icalendar
import pytest
from django.core import mail
from django.test import override_settings
from django.urls import reverse

from gouvernance import ics
from gouvernance.models import Reunion

from .conftest import TODAY, a_reunion

pytestmark = pytest.mark.django_db


def invitation_of(message) -> icalendar.Calendar:
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REQUEST"
    raw = part.get_payload(decode=True)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    return icalendar.Calendar.from_ical(raw)


def test_the_convocation_reaches_a_real_smtp_server_with_a_valid_invitation(
    client_for, comite, cdp_ussel, elu_ussel
):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message):
            received.append(message)

    reunion = a_reunion(
        comite,
        TODAY,
        lieu="Mairie d'Ussel, salle du conseil; 1er étage",
        lien_visio="https://webconf.example.fr/comite",
    )
    controller = Controller(Keep(), hostname="127.0.0.1", port=9911)
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=9911,
            EMAIL_USE_TLS=False,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
        ):
            response = client_for(cdp_ussel).post(
                reverse("gouvernance:convoquer", args=[reunion.pk]), follow=True
            )
    finally:
        controller.stop()
    assert "Convocation envoyée : 2 courriels" in response.content.decode()
    # The member with an account (its address) and the one with an address; not the third.
    assert sorted(m["To"] for m in received) == sorted(
        [elu_ussel.email, "sous-prefet@correze.example.fr"]
    )
    calendar = invitation_of(received[0])
    assert calendar["METHOD"] == "REQUEST"
    (event,) = calendar.walk("VEVENT")
    assert str(event["SUMMARY"]) == comite.nom
    assert str(event["LOCATION"]) == "Mairie d'Ussel, salle du conseil; 1er étage"
    # 14:00 – 16:00 in Paris in March (UTC+1).
    assert event.decoded("DTSTART") == datetime(2026, 3, 16, 13, 0, tzinfo=UTC)
    assert event.decoded("DTEND") == datetime(2026, 3, 16, 15, 0, tzinfo=UTC)
    assert str(event["UID"]) == f"reunion-{reunion.pk}@" + str(event["UID"]).split("@")[1]
    assert str(event["ORGANIZER"]).startswith("mailto:")
    assert "DTSTAMP" in event
    reunion.refresh_from_db()
    assert reunion.convoquee_le is not None


def test_text_is_escaped_and_long_lines_folded_at_75_octets():
    assert ics.escape("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"
    line = "DESCRIPTION:" + "é" * 100
    folded = ics.fold(line)
    parts = folded.encode().split(b"\r\n")
    assert all(len(p) <= 75 for p in parts)
    assert all(p.startswith(b" ") for p in parts[1:])
    assert "".join(p[1:] if i else p for i, p in enumerate(folded.split("\r\n"))) == line


def test_no_member_with_an_address_sends_nothing(client_for, comite, cdp_ussel):
    comite.membres.update(email="", user=None)
    reunion = a_reunion(comite)
    response = client_for(cdp_ussel).post(
        reverse("gouvernance:convoquer", args=[reunion.pk]), follow=True
    )
    assert "ajoutez les membres et leur courriel" in response.content.decode()
    assert mail.outbox == []
    reunion.refresh_from_db()
    assert reunion.convoquee_le is None


def test_readers_and_other_territories_cannot_convoke(client_for, comite, elu_ussel, prefecture_36):
    reunion = a_reunion(comite)
    url = reverse("gouvernance:convoquer", args=[reunion.pk])
    assert client_for(elu_ussel).post(url).status_code == 403
    assert client_for(prefecture_36).post(url).status_code == 404
    assert mail.outbox == []
    assert Reunion.objects.get(pk=reunion.pk).convoquee_le is None
