"""The header and the footer are rendered once per page and set of rights, then kept
(portail/templatetags/portal.py): each reader still gets their own name, unread count, menu and
logout token, escaped, and a role change shows in the menu at once."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pvd.models import Role, User
from rappels.models import Categorie, Rappel

pytestmark = pytest.mark.django_db

PAGE = reverse("portail:mentions-legales")


def header(client, url: str = PAGE) -> str:
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    return page[page.index('<header role="banner"') : page.index("</header>")]


def test_readers_of_the_same_page_each_get_their_own_name_and_menu(client, national, elu_ussel):
    client.force_login(national)
    first = header(client)
    client.force_login(elu_ussel)
    second = header(client)
    client.force_login(national)
    again = header(client)

    assert national.last_name in first and elu_ussel.last_name not in first
    assert elu_ussel.last_name in second and national.last_name not in second
    assert again == first.replace(
        re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', first)[1],
        re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', again)[1],
    )
    assert reverse("portail:user-list") in first and reverse("portail:user-list") not in second
    assert reverse("communes:synthese") in first and reverse("communes:synthese") not in second


def test_a_name_is_escaped_and_cannot_fill_another_slot(client, elu_ussel):
    User.objects.filter(pk=elu_ussel.pk).update(
        first_name="<b>Zoé</b>", last_name="<!--pvd:csrf--><!--pvd:unread-->"
    )
    client.force_login(elu_ussel)
    html = header(client)
    assert "&lt;b&gt;Zoé&lt;/b&gt;" in html
    assert "<b>Zoé" not in html
    assert "&lt;!--pvd:csrf--&gt;&lt;!--pvd:unread--&gt;" in html
    assert html.count("csrfmiddlewaretoken") == 1


def test_the_logout_form_carries_the_readers_own_token(elu_ussel, national):
    for user in (national, elu_ussel):  # the second reader gets a kept header
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', header(client))[1]
        response = client.post(reverse("account_logout"), {"csrfmiddlewaretoken": token})
        assert response.status_code == 302
        assert "_auth_user_id" not in client.session


def test_the_unread_count_is_the_readers_own(client, cdp_ussel, elu_ussel, ussel_la_courtine):
    for i in range(3):
        Rappel.objects.create(
            regle="essai",
            objet=f"essai:{i}",
            echeance=timezone.localdate(),
            destinataire=cdp_ussel,
            categorie=Categorie.PLANS,
            beneficiaire=ussel_la_courtine,
            message="Rappel d'essai",
        )
    client.force_login(cdp_ussel)
    assert '3<span class="fr-sr-only"> non lues</span>' in header(client)
    client.force_login(elu_ussel)
    assert "non lue" not in header(client)


def test_the_current_page_is_marked_in_the_header_and_the_footer(client, elu_ussel):
    client.force_login(elu_ussel)
    page = client.get(reverse("rappels:list")).content.decode()
    assert re.search(r'href="/notifications/"\s+aria-current="page"', page)
    page = client.get(PAGE).content.decode()
    assert not re.search(r'href="/notifications/"\s+aria-current', page)
    assert re.search(r'href="/mentions-legales/"\s+aria-current="page"', page)
    assert not re.search(r'href="/plan-du-site/"\s+aria-current', page)


def test_a_new_role_shows_in_the_menu_at_once(client, elu_ussel):
    client.force_login(elu_ussel)
    assert reverse("portail:user-list") not in header(client)
    Role.objects.create(user=elu_ussel, kind=Role.Kind.NATIONAL)
    assert reverse("portail:user-list") in header(client)


def test_a_visitor_gets_the_login_link_and_no_menu(client):
    html = header(client)
    assert reverse("account_login") in html
    assert "fr-navigation" not in html
    assert "csrfmiddlewaretoken" not in html


def test_the_header_reads_the_perimeter_and_the_unread_count_in_one_cache_call(
    client, cdp_ussel, ussel_la_courtine, monkeypatch
):
    from django.core.cache import cache

    from rappels import inbox

    client.force_login(cdp_ussel)
    header(client)  # both are cached now
    calls, depth = [], [0]
    for name in ("get", "get_many"):
        method = getattr(cache, name)

        def spy(*args, _method=method, _name=name, **kwargs):
            if not depth[0]:  # the test cache's get_many calls its own get: not a round trip
                calls.append(_name)
            depth[0] += 1
            try:
                return _method(*args, **kwargs)
            finally:
                depth[0] -= 1

        monkeypatch.setattr(cache, name, spy)
    assert "non lue" not in header(client)
    assert calls == ["get_many"]
    # What it read is the cache's: a change forgotten there shows at once.
    Rappel.objects.create(
        regle="essai",
        objet="essai:prefetch",
        echeance=timezone.localdate(),
        destinataire=cdp_ussel,
        categorie=Categorie.PLANS,
        beneficiaire=ussel_la_courtine,
        message="Rappel d'essai",
    )
    inbox.forget([cdp_ussel.pk])
    assert '1<span class="fr-sr-only"> non lue</span>' in header(client)


def test_the_kept_assets_are_django_dsfrs_and_the_portals_own(client, elu_ussel):
    from portail.templatetags import portal

    client.force_login(elu_ussel)
    pages = [client.get(url).content.decode() for url in (PAGE, reverse("rappels:list"))]
    for page in pages:
        head, body = page.split("</head>")
        assert re.search(
            r'<link rel="stylesheet"\s+href="/static/dsfr/dist/dsfr/dsfr\.min\.css"', head
        )
        assert 'href="/static/dsfr/dist/favicon/favicon.svg"' in head
        assert 'href="/static/css/pvd.css"' in head and 'name="htmx-config"' in head
        assert 'id="fr-theme-modal"' in body
        assert re.search(
            r'<script type="module"\s+src="/static/dsfr/dist/dsfr/dsfr\.module\.min\.js"', body
        )
        assert 'src="/static/js/htmx.min.js"' in body and 'src="/static/js/pvd.js"' in body
    with pytest.raises(Exception, match="unknown assets"):
        portal._render_assets("../base")
