"""The accessibility sweep: for each role of the test cast, Chromium follows the links a
user sees from the home page (one page per kind of page), opens the empty creation forms'
error state, and runs axe-core (WCAG 2.1 A and AA) and the RGAA criteria a test can check.

0 serious or critical violation is the rule; moderate ones are printed. When
PVD_HTML_DIR is set, the HTML each page was served with is saved there, and
`make check-html` runs the Nu HTML Checker on it."""

import os
import re
from collections import deque
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from pvd.views import ACCESSIBILITY_TESTS
from tests.e2e.sweep import (
    AXE_JS,
    BLOCKING_IMPACTS,
    FOCUS_VISIBLE,
    RGAA_CHECKS,
    followable,
    pattern,
    run_axe,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAGES_PER_ROLE = 60
# States a link does not reach: a failed login, a search without result, an empty list.
EXTRA_PAGES = {
    "anonyme": ["/accounts/password/reset/", "/accessibilite/", "/plan-du-site/"],
    "national": ["/communes/?q=zzzz", "/acces/?q=zzzz"],
    "prefecture": ["/communes/?q=zzzz", "/beneficiaires/?q=zzzz"],
}


@pytest.fixture
def cast(demo_data, national, prefecture_36, cdp_ussel, elu_ussel, partenaire):
    return {
        "anonyme": None,
        "national": national,
        "prefecture": prefecture_36,
        "chef de projet": cdp_ussel,
        "élu": elu_ussel,
        "partenaire": partenaire,
    }


class Report:
    def __init__(self):
        self.failures: list[str] = []
        self.moderate: list[str] = []
        self.pages: dict[str, int] = {}  # pages (and page states) checked, by role

    def record(self, role: str, url: str, violations: list[dict], rgaa: list[list[str]]):
        self.pages[role] = self.pages.get(role, 0) + 1
        for violation in violations:
            line = (
                f"[{role}] {url}: {violation['impact']} {violation['id']} ({violation['help']})"
                + "".join(f"\n      {node}" for node in violation["nodes"][:3])
            )
            if violation["impact"] in BLOCKING_IMPACTS:
                self.failures.append(line)
            else:
                self.moderate.append(line)
        for rule, element in rgaa:
            self.failures.append(f"[{role}] {url}: {rule}\n      {element}")


def save_html(role: str, url: str, body: str) -> None:
    directory = os.environ.get("PVD_HTML_DIR")
    if directory:
        name = re.sub(r"[^\w]+", "_", f"{role}{url}").strip("_") or "home"
        path = Path(directory) / f"{name}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")


def check(page, role: str, url: str, report: Report) -> None:
    report.record(role, url, run_axe(page), page.evaluate(RGAA_CHECKS))
    page.locator("body").focus()
    page.keyboard.press("Tab")
    unfocused = page.evaluate(FOCUS_VISIBLE)
    if unfocused:
        report.failures.append(f"[{role}] {url}: RGAA 10.7 focus invisible\n      {unfocused}")


def visit(page, role: str, url: str, report: Report) -> bool:
    response = page.goto(url)
    status = response.status if response else 0
    if status >= 500 or status == 403:
        report.failures.append(f"[{role}] {url}: un lien mène à une page en erreur {status}")
        return False
    if status != 200 or "text/html" not in (response.headers.get("content-type") or ""):
        return False
    save_html(role, url, response.text())
    check(page, role, url, report)
    return True


def submit_empty(page, role: str, url: str, report: Report) -> None:
    """The creation form's error state: submitted with nothing filled in."""
    form = page.locator("main form[method=post]").first
    if not form.count():
        return
    form.evaluate("(form) => { form.noValidate = true; }")
    with page.expect_navigation():
        form.locator("[type=submit]").last.click()
    if page.locator(".fr-error-text, .fr-alert--error").count():
        label = f"{url} (erreurs)"
        save_html(role, label, page.content())
        check(page, role, label, report)


def sweep(browser, base_url: str, role: str, user, report: Report) -> None:
    context = browser.new_context(base_url=base_url, locale="fr-FR")
    context.add_init_script(path=str(AXE_JS))
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": base_url}]
        )
    page = context.new_page()
    page.set_default_timeout(15000)
    seen: set[str] = set()
    queue = deque(["/", *EXTRA_PAGES.get(role, [])])
    creation_forms = []
    while queue and len(seen) < PAGES_PER_ROLE:
        url = queue.popleft()
        kind = pattern(url)
        if kind in seen:
            continue
        seen.add(kind)
        if not visit(page, role, url, report):
            continue
        if url.endswith("/nouveau/"):
            creation_forms.append(url)
        for href in page.eval_on_selector_all(
            "a[href]:not([download])", "(links) => links.map((a) => a.getAttribute('href'))"
        ):
            path = followable(href, base_url)
            if path and pattern(path) not in seen:
                queue.append(path)
    for url in creation_forms:
        page.goto(url)
        submit_empty(page, role, url, report)
    if user is None:
        page.goto("/accounts/login/")
        page.get_by_label("Adresse électronique").fill("inconnu@test.pvd.fr")
        page.get_by_label("Mot de passe", exact=True).fill("mauvais")
        page.get_by_role("button", name="Se connecter").click()
        check(page, role, "/accounts/login/ (erreur)", report)
    context.close()


def test_every_page_of_every_role_has_no_serious_accessibility_violation(
    browser, live_server, cast
):
    if not AXE_JS.exists():
        if os.environ.get("PVD_REQUIRE_SERVICES"):
            pytest.fail(f"axe-core is required in CI and missing at {AXE_JS}: npm ci")
        pytest.skip("axe-core is missing: npm ci (or make test)")
    report = Report()
    for role, user in cast.items():
        sweep(browser, live_server.url, role, user, report)
    print("\nPages par rôle :", report.pages)
    print(f"Violations modérées ou mineures ({len(report.moderate)}) :")
    print("\n".join(report.moderate) or "aucune")
    assert all(count >= 5 for count in report.pages.values()), report.pages
    # The accessibility statement publishes these results: it may not claim more than was tested.
    assert ACCESSIBILITY_TESTS["pages"] <= sum(report.pages.values()), report.pages
    assert not report.failures, f"{len(report.failures)} problèmes :\n" + "\n".join(report.failures)
