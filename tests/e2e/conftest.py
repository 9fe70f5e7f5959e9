import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# between browser steps are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("PVD_REQUIRE_SERVICES"):
            pytest.fail(f"Chromium is required in CI and missing at {CHROMIUM}")
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(15000)
    # What Chromium refused under the Content-Security-Policy (see csp_violations).
    page.csp_violations = []
    page.on(
        "console",
        lambda message: (
            "Content Security Policy" in message.text and page.csp_violations.append(message.text)
        ),
    )
    yield page
    context.close()


@pytest.fixture
def csp_violations(page) -> list[str]:
    """The CSP violations Chromium reported in the console during the test."""
    return page.csp_violations


@pytest.fixture
def login(page):
    def do_login(email: str, password: str = "pvd-demo"):
        page.goto("/accounts/login/")
        page.get_by_label("Adresse électronique").fill(email)
        page.get_by_label("Mot de passe", exact=True).fill(password)
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_url("**/")
        return page

    return do_login


@pytest.fixture
def demo_data(territoires):
    """The demonstration's signed conventions and illustrative plans d'action (seed_demo
    loads them only when DEBUG is on), so that detail pages have something to show."""
    from django.core.management import call_command
    from django.test import override_settings

    with override_settings(DEBUG=True), open(os.devnull, "w") as devnull:
        call_command("seed_demo", stdout=devnull)
