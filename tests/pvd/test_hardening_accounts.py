"""Issue 9, items 6 to 10: the admin behind the portal's login, MFA, the client IP behind a
proxy, session lifetime and passwords, and the security events in the journal."""

import base64
import hashlib
import hmac
import shutil
import struct
import subprocess
import time

import pytest
import redis
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from auditlog.models import LogEntry
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from pvd.mfa import mfa_required
from pvd.middleware import SESSION_SEEN_KEY, SESSION_STARTED_KEY
from pvd.models import CodeMfaUtilise, CompteurLimite, EchecsMfa, Role
from tests.factories import UserFactory, user_with_role

pytestmark = pytest.mark.django_db

PASSWORD = "pvd-demo"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """allauth counts failures in the cache: each test starts from none."""
    cache.clear()


@pytest.fixture
def mfa_enforced(settings):
    settings.PVD_MFA_ENFORCED = True


def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 30 s, 6 digits), computed here rather than by allauth."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((at or time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def login(client, email: str, password: str = PASSWORD, **extra):
    return client.post(reverse("account_login"), {"login": email, "password": password}, **extra)


def events(kind: str) -> list[LogEntry]:
    return list(LogEntry.objects.filter(action=LogEntry.Action.ACCESS, additional_data__event=kind))


# 7. MFA -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fixture, required",
    [
        ("national", True),
        ("prefecture_36", True),
        ("cdp_ussel", False),
        ("elu_ussel", False),
        ("partenaire", False),
        ("sans_role", False),
    ],
)
def test_who_must_use_mfa(request, fixture, required):
    assert mfa_required(request.getfixturevalue(fixture)) is required


def test_admin_access_requires_mfa_whatever_the_role(territoires):
    assert mfa_required(UserFactory(email="staff@test.pvd.fr", is_staff=True))
    assert mfa_required(UserFactory(email="root@test.pvd.fr", is_superuser=True))


def test_demo_accounts_are_exempt_only_when_debug_is_on(settings, territoires):
    demo = user_with_role("prefecture-36@demo.pvd.fr", Role.Kind.PREFECTURE, departements=["36"])
    assert mfa_required(demo)
    settings.DEBUG = True
    assert not mfa_required(demo)


@pytest.mark.django_db(transaction=True)  # allauth announces the new authenticator on commit
def test_national_staff_set_up_totp_before_reaching_any_page(client, mfa_enforced, national):
    assert login(client, national.email).status_code == 302
    for url in ["/", "/communes/", "/journal/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("mfa_activate_totp"))
    # allauth asks for the password again before an authenticator is added.
    page = client.get(reverse("mfa_activate_totp"), follow=True)
    assert page.redirect_chain[-1][0].startswith(reverse("account_reauthenticate"))
    assert "exige la double authentification" in page.content.decode()
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = page.context["form"].secret

    wrong = client.post(reverse("mfa_activate_totp"), {"code": "000000"})
    assert wrong.status_code == 200 and wrong.context["form"].errors
    assert not Authenticator.objects.filter(user=national).exists()

    response = client.post(reverse("mfa_activate_totp"), {"code": totp(secret)})
    assert response.status_code == 302
    types = set(Authenticator.objects.filter(user=national).values_list("type", flat=True))
    assert types == {Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES}
    assert client.get("/").status_code == 200
    assert {e.object_pk for e in events("mfa")} == {str(national.pk)}


def test_next_login_asks_for_the_totp_code(client, mfa_enforced, prefecture_36):
    TOTP.activate(prefecture_36, SECRET)
    response = login(client, prefecture_36.email)
    assert response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302

    refused = client.post(reverse("mfa_authenticate"), {"code": "123456"})
    assert refused.status_code == 200
    assert "_auth_user_id" not in client.session

    response = client.post(reverse("mfa_authenticate"), {"code": totp(SECRET)})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_a_session_without_second_factor_is_challenged(client_for, mfa_enforced, national):
    TOTP.activate(national, SECRET)
    response = client_for(national).get("/journal/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_reauthenticate"))


def test_the_identity_providers_mfa_satisfies_the_requirement(client_for, mfa_enforced, national):
    client = client_for(national)
    session = client.session
    session["pvd_mfa_via_idp"] = True
    session.save()
    assert client.get("/").status_code == 200


def test_mfa_is_offered_to_other_roles_without_being_forced(client, mfa_enforced, cdp_ussel):
    login(client, cdp_ussel.email)
    home = client.get("/")
    assert home.status_code == 200
    assert reverse("mfa_index") in home.content.decode()  # « Double authentification »
    assert client.get(reverse("mfa_index")).status_code == 200
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert client.get(reverse("mfa_activate_totp")).status_code == 200


def test_htmx_requests_owing_mfa_are_redirected_by_htmx(client_for, mfa_enforced, national):
    response = client_for(national).get("/communes/", HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(reverse("mfa_activate_totp"))


# Issue 20, item 7: the second factor's limits hold with Redis stopped --------------------------

REDIS_PORT = 9647  # a redis-server of these tests' own


@pytest.fixture
def redis_stopped(tmp_path, settings):
    """The cache points at a redis-server of its own, which is then stopped."""
    url = f"redis://127.0.0.1:{REDIS_PORT}/0"
    server = subprocess.Popen(
        ["redis-server", "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis.from_url(url)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        settings.CACHES = {
            "default": {
                "BACKEND": "pvd.cache.DegradingRedisCache",
                "LOCATION": url,
                "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
            }
        }
        cache.set("sonde", "ok")
        assert client.get(":1:sonde") is not None  # the cache used this server
    finally:
        server.kill()
        server.wait()
    assert cache.get("sonde") is None
    yield


def second_factor(client, user, code: str):
    login(client, user.email)
    return client.post(reverse("mfa_authenticate"), {"code": code})


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")
def test_with_redis_stopped_a_totp_code_works_once(client, mfa_enforced, redis_stopped, national):
    from django.test import Client

    # The cache's « only once » guard no longer says yes during the outage.
    assert cache.add("une-seule-fois", 1) is False
    TOTP.activate(national, SECRET)
    code = totp(SECRET)

    assert second_factor(client, national, code).status_code == 302
    assert client.session["_auth_user_id"] == str(national.pk)

    other = Client()
    refused = second_factor(other, national, code)
    assert refused.status_code == 200 and "Code incorrect" in refused.content.decode()
    assert "_auth_user_id" not in other.session
    assert CodeMfaUtilise.objects.filter(user=national).count() == 1


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")
def test_with_redis_stopped_wrong_codes_meet_the_limit(
    client, mfa_enforced, redis_stopped, national
):
    from pvd.mfa import MAX_WRONG_CODES, TOO_MANY

    TOTP.activate(national, SECRET)
    login(client, national.email)
    answers = [
        client.post(reverse("mfa_authenticate"), {"code": "000000"}).content.decode()
        for _ in range(7)
    ]
    assert all("Code incorrect" in page for page in answers[:MAX_WRONG_CODES])
    assert all(TOO_MANY.replace("'", "&#x27;") in page for page in answers[MAX_WRONG_CODES:])

    # At the limit, even the right code is refused until the window ends.
    refused = client.post(reverse("mfa_authenticate"), {"code": totp(SECRET)})
    assert refused.status_code == 200 and "_auth_user_id" not in client.session
    assert EchecsMfa.objects.get(user=national).echecs == MAX_WRONG_CODES


# Issue 20, item 7: allauth's password limits hold with Redis stopped ------------------------

LIMITS_REDIS_PORT = 9652  # another redis-server of these tests' own, stopped in mid-test


@pytest.fixture
def redis_then_stopped(tmp_path, settings):
    """The cache points at a redis-server of its own; the test stops it by calling the
    returned function."""
    url = f"redis://127.0.0.1:{LIMITS_REDIS_PORT}/0"
    server = subprocess.Popen(
        ["redis-server", "--port", str(LIMITS_REDIS_PORT), "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    settings.CACHES = {
        "default": {
            "BACKEND": "pvd.cache.DegradingRedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }

    def stop() -> list[bytes]:
        """Stop the server; the keys it held."""
        keys = client.keys("*")
        server.kill()
        server.wait()
        assert cache.get("sonde") is None
        return keys

    try:
        cache.set("sonde", "ok")
        assert client.get(":1:sonde") is not None  # the cache uses this server
        yield stop
    finally:
        server.kill()
        server.wait()


def refused_for_too_many(response) -> bool:
    return "Trop de tentatives de connexion" in response.content.decode()


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")
def test_wrong_passwords_beyond_the_limit_are_refused_while_redis_is_down(
    client, redis_then_stopped, prefecture_36
):
    # Counted before the outage (allauth: 5 wrong passwords per account in 5 minutes)…
    for _ in range(3):
        assert not refused_for_too_many(login(client, prefecture_36.email, "mauvais"))
    assert CompteurLimite.objects.filter(cle__contains=":login_failed:").exists()
    assert not [key for key in redis_then_stopped() if b"allauth:rl" in key]
    # …and still counted during it: the 6th attempt is refused, the right password too.
    for _ in range(2):
        assert not refused_for_too_many(login(client, prefecture_36.email, "mauvais"))
    assert refused_for_too_many(login(client, prefecture_36.email, "mauvais"))
    assert refused_for_too_many(login(client, prefecture_36.email))
    assert "_auth_user_id" not in client.session
    assert [e.object_repr for e in events("lockout")] == [prefecture_36.email] * 2
    # Another account logs in meanwhile: the outage stops no one.
    other = UserFactory(email="autre@test.pvd.fr")
    login(client, other.email)
    assert client.session["_auth_user_id"] == str(other.pk)


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")
def test_wrong_passwords_from_one_address_meet_its_limit_while_redis_is_down(
    client, redis_then_stopped, territoires
):
    redis_then_stopped()
    # allauth: 10 wrong passwords per minute from one address, whatever the accounts.
    answers = [login(client, f"personne{n}@exemple.fr", "mauvais") for n in range(11)]
    assert not any(refused_for_too_many(answer) for answer in answers[:10])
    assert refused_for_too_many(answers[10])


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")
def test_password_reset_requests_meet_their_limit_while_redis_is_down(
    client, redis_then_stopped, cdp_ussel
):
    redis_then_stopped()
    url = reverse("account_reset_password")
    # allauth: 5 requests per minute for one address.
    statuses = [client.post(url, {"email": cdp_ussel.email}).status_code for _ in range(6)]
    assert statuses == [302] * 5 + [429]
    assert len(mail.outbox) == 5


def test_a_rate_limit_lock_in_the_database_is_granted_once_until_released_or_expired():
    from pvd import ratelimits

    key = "allauth:rl:allauth.account:login_failed:5/300.0/key:abc:lock"
    assert ratelimits.add(key, True, 10) is True
    assert ratelimits.add(key, True, 10) is False  # held by another request
    assert ratelimits.delete(key) is True
    assert ratelimits.add(key, True, 0) is True  # a lock whose holder died expires
    assert ratelimits.add(key, True, 10) is True
    counter = key.removesuffix(":lock")
    ratelimits.set(counter, [1.5, 0.5], 300)
    assert ratelimits.get(counter, []) == [1.5, 0.5]
    ratelimits.set(counter, [], 0)  # expired: read as absent, deleted at the next write
    assert ratelimits.get(counter, "absent") == "absent"


def test_wrong_codes_are_counted_per_account_and_a_right_code_resets_them(
    client, mfa_enforced, national
):
    TOTP.activate(national, SECRET)
    login(client, national.email)
    for _ in range(3):
        client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert EchecsMfa.objects.get(user=national).echecs == 3
    assert client.post(reverse("mfa_authenticate"), {"code": totp(SECRET)}).status_code == 302
    assert EchecsMfa.objects.get(user=national).echecs == 0


def test_readyz_details_only_after_the_second_factor(client_for, mfa_enforced, national):
    client = client_for(national)  # password only: this session owes its second factor
    assert "service" not in client.get(reverse("portail:readyz")).json()

    session = client.session
    session["pvd_mfa_via_idp"] = True
    session.save()
    assert "service" in client.get(reverse("portail:readyz")).json()


# 6. The admin uses the portal's login --------------------------------------------------------


def test_admin_login_is_the_portals_login(client, territoires):
    UserFactory(email="admin@test.pvd.fr", is_staff=True, is_superuser=True)
    response = client.get("/admin/login/?next=/admin/pvd/user/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    # The admin's own form is gone: a POST with the right password logs nobody in.
    client.post("/admin/login/", {"username": "admin@test.pvd.fr", "password": PASSWORD})
    assert "_auth_user_id" not in client.session


def test_an_account_locked_on_the_portal_stays_locked_for_the_admin(client, territoires):
    UserFactory(email="admin@test.pvd.fr", is_staff=True, is_superuser=True)
    for _ in range(5):
        login(client, "admin@test.pvd.fr", "mauvais")
    locked = login(client, "admin@test.pvd.fr")
    assert "_auth_user_id" not in client.session
    assert locked.status_code in (200, 429)
    client.post(
        "/admin/login/",
        {"username": "admin@test.pvd.fr", "password": PASSWORD, "next": "/admin/"},
    )
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302
    assert events("lockout")


def test_a_logged_in_account_without_admin_access_gets_a_403(client_for, cdp_ussel):
    client = client_for(cdp_ussel)
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/login/?next=/admin/").status_code == 403


def test_staff_reach_the_admin_after_the_portal_login_and_mfa(client, mfa_enforced, territoires):
    staff = UserFactory(email="admin@test.pvd.fr", is_staff=True, is_superuser=True)
    TOTP.activate(staff, SECRET)
    login(client, staff.email)
    client.post(reverse("mfa_authenticate"), {"code": totp(SECRET)})
    assert client.get("/admin/").status_code == 200


# 9. Sessions, passwords, demo accounts, password reset ----------------------------------------


def test_sessions_last_two_hours_idle_and_twelve_hours_in_all(settings):
    assert settings.SESSION_COOKIE_AGE == 2 * 60 * 60
    assert settings.SESSION_MAX_LIFETIME == 12 * 60 * 60


def backdate(client, **seconds_ago) -> None:
    session = client.session
    now = int(time.time())
    session[SESSION_STARTED_KEY] = now - seconds_ago.get("started", 0)
    session[SESSION_SEEN_KEY] = now - seconds_ago.get("seen", 0)
    session.save()


def test_a_session_ends_twelve_hours_after_login(client_for, cdp_ussel):
    client = client_for(cdp_ussel)
    backdate(client, started=12 * 3600 - 60, seen=60)
    assert client.get("/").status_code == 200
    backdate(client, started=12 * 3600 + 60, seen=60)
    response = client.get("/communes/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert client.get("/").status_code == 302


def test_a_session_ends_after_two_idle_hours_and_activity_renews_it(client_for, cdp_ussel):
    client = client_for(cdp_ussel)
    backdate(client, started=3 * 3600, seen=2 * 3600 - 60)
    before = int(time.time())
    assert client.get("/").status_code == 200
    # Renewed by this very request: stamped between its start and its end.
    assert before <= client.session[SESSION_SEEN_KEY] <= int(time.time())
    backdate(client, started=3 * 3600, seen=2 * 3600 + 60)
    assert client.get("/").status_code == 302


def test_a_password_needs_twelve_characters(client, cdp_ussel):
    login(client, cdp_ussel.email)
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": "Zq8#vLm2!pw", "password2": "Zq8#vLm2!pw"},
    )
    assert response.status_code == 200
    assert "12 caractères" in response.content.decode()
    cdp_ussel.refresh_from_db()
    assert cdp_ussel.check_password(PASSWORD)


def test_a_demo_account_cannot_log_in_when_debug_is_off(client, territoires):
    demo = user_with_role("cdp-ussel@demo.pvd.fr", Role.Kind.ELU, communes=["19275"])
    response = login(client, demo.email)
    assert response.status_code == 200
    assert "comptes de démonstration" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_demo_session_ends_when_debug_is_off(client_for, territoires):
    demo = user_with_role("elu@demo.pvd.fr", Role.Kind.ELU, communes=["19275"])
    assert client_for(demo).get("/").status_code == 302


def test_a_demo_account_logs_in_when_debug_is_on(client, settings, territoires):
    settings.DEBUG = True
    demo = user_with_role("elu@demo.pvd.fr", Role.Kind.ELU, communes=["19275"])
    login(client, demo.email)
    assert client.get("/").status_code == 200


def test_a_reset_request_for_an_unknown_address_sends_nothing(client, territoires):
    response = client.post(reverse("account_reset_password"), {"email": "inconnu@exemple.fr"})
    assert response.status_code == 302
    assert mail.outbox == []


# 8 and 10. Client IP and the journal ----------------------------------------------------------


def test_a_forged_forwarded_for_header_is_ignored_by_default(client, client_for, national):
    login(client, national.email, HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert [e.remote_addr for e in events("login")] == ["127.0.0.1"]
    client_for(national).post(
        reverse("actions:financeur-create"),
        {"nom": "Fonds pour les essais", "ordre": "2", "actif": "on"},
        HTTP_X_FORWARDED_FOR="6.6.6.6",
    )
    entry = LogEntry.objects.get(
        content_type__model="financeur", object_repr="Fonds pour les essais"
    )
    assert entry.remote_addr == "127.0.0.1"


def test_behind_one_trusted_proxy_the_address_it_saw_is_used(client, settings, national):
    settings.TRUSTED_PROXY_COUNT = 1
    login(client, national.email, "mauvais", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    login(client, national.email, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert [e.remote_addr for e in events("login_failed")] == ["203.0.113.7"]
    assert [e.remote_addr for e in events("login")] == ["203.0.113.9"]


def test_security_events_are_journaled_with_who_and_when(client, national, cdp_ussel):
    login(client, "personne@exemple.fr", "mauvais")
    login(client, cdp_ussel.email, "mauvais")
    login(client, cdp_ussel.email)
    client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": "Zq8#vLm2!pw-long", "password2": "Zq8#vLm2!pw-long"},
    )
    client.post(reverse("account_logout"))
    failed = events("login_failed")
    assert sorted(e.object_repr for e in failed) == ["cdp-ussel@test.pvd.fr", "personne@exemple.fr"]
    assert all(e.actor is None for e in failed)
    for kind in ("login", "password", "logout"):
        (entry,) = events(kind)
        assert entry.actor == cdp_ussel and entry.object_pk == str(cdp_ussel.pk)
        assert entry.remote_addr == "127.0.0.1" and entry.timestamp


def test_a_lockout_is_journaled(client, prefecture_36):
    for _ in range(6):
        login(client, prefecture_36.email, "mauvais")
    assert [e.object_repr for e in events("lockout")] == [prefecture_36.email]


def test_catalogue_and_role_beneficiary_changes_are_journaled(
    client_for, national, ussel_la_courtine
):
    client = client_for(national)
    client.post(
        reverse("actions:financeur-create"),
        {"nom": "Fonds des essais", "ordre": "2", "actif": "on"},
    )
    account = UserFactory(email="nouvelle-cdp@test.pvd.fr")
    client.post(
        reverse("portail:role-create", args=[account.pk]),
        {"kind": Role.Kind.CHEF_PROJET, "beneficiaire_codes": "19275"},
    )
    role = account.roles.get()
    assert list(role.beneficiaires.all()) == [ussel_la_courtine]
    role_entries = LogEntry.objects.filter(content_type__model="role", object_pk=str(role.pk))
    assert any("beneficiaires" in (e.changes or {}) for e in role_entries)
    assert all(e.actor == national for e in role_entries)

    journal = client.get("/journal/?evenement=financeurs")
    assert "Fonds des essais" in journal.content.decode()
    assert "nouvelle-cdp" not in journal.content.decode()
    journal = client.get("/journal/?evenement=roles")
    assert "nouvelle-cdp@test.pvd.fr" in journal.content.decode()


def test_national_staff_filter_the_journal_by_event_type(client, client_for, national, cdp_ussel):
    login(client, cdp_ussel.email, "mauvais")
    login(client, cdp_ussel.email)
    page = client_for(national).get("/journal/?evenement=login_failed")
    assert page.status_code == 200
    entries = list(page.context["object_list"])
    assert [e.entry.additional_data["event"] for e in entries] == ["login_failed"]
    assert "Échec de connexion" in page.content.decode()
    assert "127.0.0.1" in page.content.decode()


def test_only_national_staff_read_the_security_events(client, client_for, prefecture_36):
    login(client, prefecture_36.email)
    assert events("login")
    page = client_for(prefecture_36).get("/journal/?evenement=login")
    assert page.status_code == 200
    assert list(page.context["object_list"]) == []


def test_an_htmx_request_after_the_session_ended_reloads_on_the_login_page(client_for, cdp_ussel):
    client = client_for(cdp_ussel)
    backdate(client, started=13 * 3600, seen=60)
    response = client.get("/communes/", HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(reverse("account_login"))
