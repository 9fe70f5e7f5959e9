"""Sessions stay in the database, read by a plain SELECT (pvd/sessions.py): a live session
is read, an expired or unknown one is not, and logout deletes the row."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from pvd.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_the_portal_uses_the_database_store():
    assert settings.SESSION_ENGINE == "pvd.sessions"


def test_a_live_session_is_read_an_expired_or_unknown_one_is_not():
    store = SessionStore()
    store["pvd"] = "valeur"
    store.create()
    key = store.session_key

    assert SessionStore(key).load() == {"pvd": "valeur"}

    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    expired = SessionStore(key)
    assert expired.load() == {}
    assert expired.session_key is None  # a new key if it is saved: never the old one again

    unknown = SessionStore("x" * 32)
    assert unknown.load() == {} and unknown.session_key is None


def test_a_logged_in_reader_keeps_their_session_until_logout(client, elu_ussel):
    client.force_login(elu_ussel)
    key = client.session.session_key
    assert client.get(reverse("portail:mentions-legales")).context["user"] == elu_ussel
    client.post(reverse("account_logout"))
    assert not Session.objects.filter(session_key=key).exists()
    assert not client.get(reverse("portail:mentions-legales")).context["user"].is_authenticated
