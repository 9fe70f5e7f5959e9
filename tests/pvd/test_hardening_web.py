"""Issue 9, items 1, 2, 14 and 15: user text escaped everywhere, a Content-Security-Policy on
every response, double submissions as form errors, malformed identifiers as 404."""

import re
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.urls import reverse

from actions.forms import FicheForm
from actions.models import FicheAction, Financeur, ensure_axes
from tests.actions.test_fiches import create_url, new_fiche_data
from tests.actions.test_plan import fiche

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def axes_ussel(ussel_la_courtine):
    ensure_axes(ussel_la_courtine)
    return ussel_la_courtine


# 1. Stored XSS ------------------------------------------------------------------------------


def test_a_fiche_title_quoted_in_the_success_message_is_escaped(client_for, cdp_ussel, axes_ussel):
    client = client_for(cdp_ussel)
    response = client.post(
        create_url(axes_ussel), new_fiche_data(axes_ussel, titre=SCRIPT), follow=True
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "enregistrée" in html
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_funder_name_in_messages_and_lists_is_escaped(client_for, national):
    response = client_for(national).post(
        reverse("actions:financeur-create"),
        {"nom": f'<img src=x onerror="alert(1)">{SCRIPT}', "ordre": "1", "actif": "on"},
        follow=True,
    )
    html = response.content.decode()
    assert Financeur.objects.filter(nom__startswith="<img").exists()
    assert "<img src=x" not in html and SCRIPT not in html


def test_no_template_or_module_marks_text_safe():
    """|safe, mark_safe and autoescape off would let a user's text through unescaped:
    markup is built with format_html, whose arguments are escaped."""
    root = Path(settings.BASE_DIR)
    offenders = []
    # The one exception: the kept header and footer (portail/templatetags/portal.py) mark safe
    # what templates rendered, with the reader's name escaped into its slot; tested in
    # tests/pvd/test_portal_header.py.
    kept = root / "portail" / "templatetags" / "portal.py"
    modules = [p for p in root.glob("*/**/*.py") if "migrations" not in p.parts and p != kept]
    for path in [*root.glob("templates/**/*.html"), *modules]:
        if {".venv", "node_modules", "tests", "bench", "scripts"} & set(
            path.relative_to(root).parts
        ):
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"\|\s*safe\b|mark_safe\(|autoescape off|SafeString\(", text):
            offenders.append(str(path.relative_to(root)))
    assert offenders == []
    assert settings.DSFR_CONTENT_IS_SAFE is False


# 2. Content-Security-Policy -----------------------------------------------------------------


def csp(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_every_response_carries_the_csp_and_the_permissions_policy(client, client_for, national):
    for response in [
        client.get(reverse("account_login")),
        client.get("/healthz"),
        client_for(national).get(reverse("portail:home")),
        client_for(national).get("/nexiste-pas/"),
    ]:
        policy = csp(response)
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["object-src"] == ["'none'"]
        for directive in ("script-src", "style-src", "default-src"):
            assert "'unsafe-inline'" not in policy.get(directive, [])
            assert "'unsafe-eval'" not in policy.get(directive, [])
        assert "camera=()" in response["Permissions-Policy"]
        assert "geolocation=()" in response["Permissions-Policy"]


def test_pages_have_no_inline_script_or_style_without_the_nonce(client_for, cdp_ussel, axes_ussel):
    from datetime import date

    fiche(
        axes_ussel,
        1,
        "1.1",
        1000,
        date_debut_prevue=date(2025, 1, 1),
        date_fin_prevue=date(2026, 1, 1),
    )
    client = client_for(cdp_ussel)
    # A page with a flash message (its close button is scripted from a static file).
    data = new_fiche_data(axes_ussel, reference="1.5")
    with_message = client.post(create_url(axes_ussel), data, follow=True)
    assert "data-pvd-dismiss" in with_message.content.decode()
    assert not re.search(r"\son[a-z]+=", with_message.content.decode())
    for url in [
        reverse("portail:home"),
        reverse("actions:plan", args=[axes_ussel.pk]),
        create_url(axes_ussel),
        reverse("account_change_password"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"])
        assert ' style="' not in html, url
        assert not re.search(r"\son[a-z]+=", html), url
        for tag in re.findall(r"<(?:script|style)\b[^>]*>", html):
            assert "src=" in tag or (nonce and f'nonce="{nonce.group(1)}"' in tag), (url, tag)


# 14. Double submit --------------------------------------------------------------------------


def twin_saved_after_checks(form_class, save_twin):
    """The other of two identical submissions commits its row after this one's form checks
    passed and before this one saves: what two POSTs at once do."""
    checks = form_class._post_clean

    def _post_clean(form):
        checks(form)
        save_twin()

    return mock.patch.object(form_class, "_post_clean", _post_clean)


def test_two_identical_new_fiche_posts_give_a_form_error_not_a_500(
    client_for, cdp_ussel, axes_ussel
):
    data = new_fiche_data(axes_ussel, reference="1.7")
    with twin_saved_after_checks(FicheForm, lambda: fiche(axes_ussel, 1, "1.7", 300000)):
        response = client_for(cdp_ussel).post(create_url(axes_ussel), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Une fiche de ce plan porte déjà cette référence." in html
    assert "» enregistrée." not in html
    assert FicheAction.objects.filter(beneficiaire=axes_ussel, reference="1.7").count() == 1


def test_a_funder_created_twice_at_once_gives_a_form_error(client_for, national):
    from actions.forms import FinanceurForm

    data = {"nom": "Fonds vert bis", "ordre": "3", "actif": "on"}
    twin = lambda: Financeur.objects.create(nom="Fonds vert bis")  # noqa: E731
    with twin_saved_after_checks(FinanceurForm, twin):
        response = client_for(national).post(reverse("actions:financeur-create"), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Ce financeur figure déjà au catalogue." in html
    assert "ajouté" not in html
    assert Financeur.objects.filter(nom="Fonds vert bis").count() == 1


def test_an_account_created_twice_at_once_gives_a_form_error(client_for, national):
    from portail.forms import UserForm
    from pvd.models import User
    from tests.factories import UserFactory

    data = {"email": "double@test.pvd.fr", "first_name": "A", "last_name": "B", "is_active": "on"}
    with twin_saved_after_checks(UserForm, lambda: UserFactory(email="double@test.pvd.fr")):
        response = client_for(national).post(reverse("portail:user-create"), data)
    assert response.status_code == 200
    assert User.objects.filter(email="double@test.pvd.fr").count() == 1


# 15. Malformed identifiers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/communes/%00/",
        "/communes/19%0075/",
        "/beneficiaires/selection/%00/",
        "/actions/%00/",
        "/conventions/%00/",
        "/acces/%00/",
        "/%00",
    ],
)
def test_a_nul_byte_in_the_path_answers_404(client_for, national, url):
    assert client_for(national).get(url).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/communes/?q=%00",
        "/communes/?departement=%00",
        "/beneficiaires/?q=%00&departement=%00",
        "/acces/?q=%00",
        "/journal/?actor=%00",
        "/communes/%C3%A9%E2%80%AE/",
        "/communes/" + "9" * 300 + "/",
    ],
)
def test_malformed_parameters_never_give_a_500(client_for, national, url):
    # A control character in a parameter is a French 400 (pvd.middleware), never a 500.
    assert client_for(national).get(url).status_code in {200, 400, 404}
