"""The accessibility sweep: for each role of the test cast, Chromium follows the links a
user sees from the home page (one page per kind of page) and runs axe-core (WCAG 2.1 A and
AA) and the RGAA criteria a test can check, on each page and on the states links do not
reach: every dialog and disclosure opened (on a phone's screen too), every form sent back
with its errors, every search matching nothing, every htmx fragment once swapped in.

0 serious or critical violation is the rule; moderate ones are printed. When
PVD_HTML_DIR is set, the HTML of each full page (and page state) is saved there, and
`make check-html` runs the Nu HTML Checker on it."""

import os
import re
import time
import unicodedata
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.conf import settings
from django.db.models import Max
from django.test import Client
from django.utils.module_loading import import_string

from actions.models import ExportPlan
from conventions.models import Convention, DocumentConvention
from portail.views import ACCESSIBILITY_TESTS
from pvd.jobs import job_models
from tests.e2e.sweep import (
    AXE_JS,
    BLOCKING_IMPACTS,
    EMPTY_REQUIRED,
    FOCUS_VISIBLE,
    NOTHING_MATCHES,
    OPENABLE,
    RGAA_CHECKS,
    SEARCH_FIELD,
    followable,
    pattern,
    run_axe,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PAGES_PER_ROLE = 60
FORMS_PER_ROLE = 15  # error states sent per role: the main forms, in the order first met
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 720}
# Every page is checked at the desktop width it is loaded at, then at these (a small phone, a
# tablet) without reloading it: axe again, and nothing wider than the window.
NARROW = ({"width": 320, "height": 640}, {"width": 768, "height": 1024})
WIDTHS = [DESKTOP["width"], *(size["width"] for size in NARROW)]
# The page wider than its window: something escapes it, and the reader scrolls the whole page
# sideways (a table's own scroll area is fine: it is inside the page's width).
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= window.innerWidth) return null;
  const wide = [...document.querySelectorAll("body *")].filter(
    (element) => element.getBoundingClientRect().right > width + 1);
  const outermost = wide.filter((element) => !wide.includes(element.parentElement));
  return document.documentElement.scrollWidth + " px : "
    + outermost.slice(0, 3).map((element) => element.outerHTML.slice(0, 120)).join(" | ");
}"""
# Pages the visitor reaches from the footer or the login form's links.
EXTRA_PAGES = {"visiteur": ["/accounts/password/reset/", "/accessibilite/", "/plan-du-site/"]}
# The kinds of page state the sweep checks, and their names in ACCESSIBILITY_TESTS["etats"]:
# each must have been met at least once (if one disappears, the sweep says so).
STATES = {
    "modale": "modales",
    "volet": "volets",
    "erreurs": "erreurs",
    "recherche sans résultat": "recherches",
    "après mise à jour htmx": "htmx",
}
# What htmx polls (the page of a job in progress), written either way htmx reads it.
POLLING = "[data-hx-trigger*=every], [hx-trigger*=every]"


@pytest.fixture
def cast(demo_data, national, prefecture_36, cdp_ussel, elu_ussel, partenaire):
    return {
        "visiteur": None,
        "équipe nationale": national,
        "préfecture": prefecture_36,
        "chef de projet": cdp_ussel,
        "élu": elu_ussel,
        "partenaire": partenaire,
    }


@pytest.fixture
def reset_link(sans_role) -> str:
    """The link of a password reset e-mail: the visitor chooses a new password there."""
    key = default_token_generator.make_token(sans_role)
    return f"/accounts/password/reset/key/{user_pk_to_url_str(sans_role)}-{key}/"


@pytest.fixture
def jobs_in_progress(demo_data, national, cdp_ussel, ussel_la_courtine) -> dict[str, list[str]]:
    """A convention PDF and a national export being generated, so that their pages poll for
    the result with htmx; the pages, visited first, are where each role sees them."""
    convention = Convention.objects.filter(beneficiaire=ussel_la_courtine).order_by("pk").first()
    version = convention.documents.aggregate(last=Max("version"))["last"] or 0
    DocumentConvention.objects.create(
        convention=convention, version=version + 1, requested_by=cdp_ussel
    )
    export = ExportPlan.objects.create(
        perimetre=ExportPlan.Perimetre.NATIONAL, requested_by=national
    )
    return {
        "chef de projet": [f"/conventions/{convention.pk}/"],
        "équipe nationale": [f"/actions/export/{export.pk}/"],
    }


def finish_jobs(user) -> None:
    """What the worker does: run the task of every job the user is waiting for."""
    for model in job_models():
        waiting = model.objects.filter(statut=model.Statut.EN_COURS, requested_by=user)
        for pk in waiting.values_list("pk", flat=True):
            import_string(model.TASK)(pk)


class Report:
    def __init__(self):
        self.failures: list[str] = []
        self.moderate: list[str] = []
        self.pages: dict[str, int] = {}  # pages checked, by role
        self.role_states: dict[str, int] = {}  # page states checked, by role
        self.states: dict[str, int] = {}  # page states checked, by kind of state
        self.seconds = {"pages": 0.0, "largeurs": 0.0, "états": 0.0}
        self.widths: dict[int, int] = {}  # pages checked, by width
        # The forms sent back with errors and the searches without result, by kind of page:
        # the first role that reaches one checks it for all (the others would see the same).
        self.sent: set[str] = set()

    def first_time(self, state: str, url: str) -> bool:
        key = f"{state} {pattern(url)}"
        if key in self.sent:
            return False
        self.sent.add(key)
        return True

    def record(self, role: str, url: str, violations: list[dict], rgaa: list[list[str]]):
        state = re.search(r"\(([^()]+)\)$", url)
        if state:
            kind = state.group(1).split(" : ")[0]
            self.states[kind] = self.states.get(kind, 0) + 1
            self.role_states[role] = self.role_states.get(role, 0) + 1
        else:
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
        # ASCII names: the checker's JVM may run without a UTF-8 locale.
        ascii_name = unicodedata.normalize("NFKD", f"{role}{url}").encode("ascii", "ignore")
        name = re.sub(r"[^A-Za-z0-9]+", "_", ascii_name.decode()).strip("_") or "home"
        path = Path(directory) / f"{name}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")


def check(page, role: str, url: str, report: Report, scope: str | None = None) -> None:
    report.record(role, url, run_axe(page, scope), page.evaluate(RGAA_CHECKS))
    if scope is None:
        page.locator("body").focus()
    page.keyboard.press("Tab")
    unfocused = page.evaluate(FOCUS_VISIBLE)
    if unfocused:
        report.failures.append(f"[{role}] {url}: RGAA 10.7 focus invisible\n      {unfocused}")


def overflow(page, role: str, url: str, report: Report, width: int) -> None:
    report.widths[width] = report.widths.get(width, 0) + 1
    wider = page.evaluate(OVERFLOW)
    if wider:
        report.failures.append(
            f"[{role}] {url} à {width} px : page plus large que la fenêtre {wider}"
        )


def narrow(page, role: str, url: str, report: Report) -> None:
    """The loaded page at each narrow width: axe and the overflow check, no reload."""
    start = time.monotonic()
    for size in NARROW:
        page.set_viewport_size(size)
        for violation in run_axe(page):
            line = (
                f"[{role}] {url} à {size['width']} px : {violation['impact']} {violation['id']}"
                f" ({violation['help']})"
                + "".join(f"\n      {node}" for node in violation["nodes"][:3])
            )
            if violation["impact"] in BLOCKING_IMPACTS:
                report.failures.append(line)
            else:
                report.moderate.append(line)
        overflow(page, role, url, report, size["width"])
    page.set_viewport_size(DESKTOP)
    report.seconds["largeurs"] += time.monotonic() - start


def visit(page, role: str, url: str, report: Report, seen: set[str]) -> bool:
    response = page.goto(url)
    status = response.status if response else 0
    if status >= 500 or status == 403:
        report.failures.append(f"[{role}] {url}: un lien mène à une page en erreur {status}")
        return False
    if status != 200 or "text/html" not in (response.headers.get("content-type") or ""):
        return False
    landed = pattern(urlsplit(page.url).path)
    if landed != pattern(url):  # redirected (the login page, once logged in, to the home page)
        if landed in seen:
            return False
        seen.add(landed)
    save_html(role, url, response.text())
    check(page, role, url, report)
    overflow(page, role, url, report, DESKTOP["width"])
    narrow(page, role, url, report)
    return True


def settled(page) -> None:
    """Wait for the opening transition to end: axe measures contrasts on what is painted."""
    page.wait_for_function(
        "() => document.getAnimations().every((animation) => animation.playState !== 'running')"
    )


def open_each(page, role: str, url: str, report: Report, opened: set[str]) -> None:
    """Open each dialog and disclosure of the page not opened yet, and check it open: a
    dialog alone (the page behind it is inert), the page with a disclosure open."""
    for target, modal in page.evaluate(OPENABLE):
        if target in opened:
            continue
        opened.add(target)
        # The focus check left the skip links shown: hidden again, they would move the button.
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        page.locator(f'[aria-controls="{target}"]:visible').first.click()
        if modal:
            page.locator(f"#{target}.fr-modal--opened").wait_for()
            settled(page)
            check(page, role, f"{url} (modale : #{target})", report, scope=f"#{target}")
            page.locator(f"#{target} .fr-btn--close").click()
            page.locator(f"#{target}.fr-modal--opened").wait_for(state="detached")
        else:
            page.locator(f'[aria-controls="{target}"][aria-expanded=true]').first.wait_for()
            page.locator(f"#{target}").wait_for()
            settled(page)
            check(page, role, f"{url} (volet : #{target})", report)


def after_swaps(page, role: str, user, url: str, report: Report) -> None:
    """The page once htmx swapped in what it polls for: the jobs it waits for are done."""
    if not page.locator(POLLING).count():
        return
    page.evaluate(
        """() => { window.pvdSwaps = 0;
          document.body.addEventListener("htmx:afterSettle", () => { window.pvdSwaps += 1; }); }"""
    )
    finish_jobs(user)
    page.wait_for_function(
        f"() => window.pvdSwaps > 0 && !document.querySelector('{POLLING}')",
        timeout=10000,
    )
    label = f"{url} (après mise à jour htmx)"
    save_html(role, label, page.content())
    check(page, role, label, report)


def submit_empty(page, base_url: str, role: str, url: str, report: Report) -> None:
    """The main form's error state: sent back with its required fields emptied."""
    page.goto(url)
    for form in page.locator("main form[method=post]").all():
        action = form.get_attribute("action") or url
        if followable(action, base_url) is None:
            continue  # a state change or a file (sign, send, delete, upload a scan)
        if not form.evaluate(EMPTY_REQUIRED):
            continue
        with page.expect_navigation():
            form.locator("[type=submit]").last.click()
        if page.locator(".fr-error-text, .fr-alert--error, .fr-message--error").count():
            label = f"{url} (erreurs)"
            save_html(role, label, page.content())
            check(page, role, label, report)
        else:
            report.failures.append(f"[{role}] {url}: formulaire vide accepté sans message")
        return


def search_nothing(page, role: str, url: str, report: Report) -> None:
    """The list's empty state: a search that matches nothing."""
    page.goto(url)
    field = page.locator(SEARCH_FIELD).first
    field.fill(NOTHING_MATCHES)
    with page.expect_navigation():
        field.evaluate("(field) => field.form.requestSubmit()")
    label = f"{url} (recherche sans résultat)"
    save_html(role, label, page.content())
    check(page, role, label, report)


def sweep(browser, base_url: str, role: str, user, report: Report, extra: list[str]) -> None:
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
    page.set_viewport_size(DESKTOP)
    page.set_default_timeout(15000)
    seen: set[str] = set()
    opened: set[str] = set()
    queue = deque(["/", *EXTRA_PAGES.get(role, []), *extra])
    forms, searches = [], []
    while queue and len(seen) < PAGES_PER_ROLE:
        url = queue.popleft()
        kind = pattern(url)
        if kind in seen:
            continue
        seen.add(kind)
        start = time.monotonic()
        visited = visit(page, role, url, report, seen)
        report.seconds["pages"] += time.monotonic() - start
        if not visited:
            continue
        start = time.monotonic()
        after_swaps(page, role, user, url, report)
        open_each(page, role, url, report, opened)
        report.seconds["états"] += time.monotonic() - start
        if page.locator("main form[method=post] [required]").count():
            forms.append(url)
        if page.locator(SEARCH_FIELD).count():
            searches.append(url)
        for href in page.eval_on_selector_all(
            "a[href]:not([download])", "(links) => links.map((a) => a.getAttribute('href'))"
        ):
            path = followable(href, base_url)
            if path and pattern(path) not in seen:
                queue.append(path)
    start = time.monotonic()
    for url in [url for url in forms if report.first_time("erreurs", url)][:FORMS_PER_ROLE]:
        submit_empty(page, base_url, role, url, report)
    for url in [url for url in searches if report.first_time("recherche", url)]:
        search_nothing(page, role, url, report)
    # What a phone shows: the header's menu and the breadcrumb fold into dialogs and disclosures.
    page.set_viewport_size(PHONE)
    for url in ("/", "/plan-du-site/"):
        page.goto(url)
        open_each(page, role, f"{url} (téléphone)", report, opened)
    if user is None:
        page.goto("/accounts/login/")
        page.get_by_label("Adresse électronique").fill("inconnu@test.pvd.fr")
        page.get_by_label("Mot de passe", exact=True).fill("mauvais")
        page.get_by_role("button", name="Se connecter").click()
        page.locator(".fr-alert--error, .fr-error-text").first.wait_for()
        check(page, role, "/accounts/login/ (erreurs : identifiants inconnus)", report)
    report.seconds["états"] += time.monotonic() - start
    context.close()


def test_every_page_of_every_role_has_no_serious_accessibility_violation(
    browser, live_server, cast, jobs_in_progress, reset_link
):
    if not AXE_JS.exists():
        if os.environ.get("PVD_REQUIRE_SERVICES"):
            pytest.fail(f"axe-core is required in CI and missing at {AXE_JS}: npm ci")
        pytest.skip("axe-core is missing: npm ci (or make test)")
    report = Report()
    extra = {**jobs_in_progress, "visiteur": [reset_link]}
    for role, user in cast.items():
        sweep(browser, live_server.url, role, user, report, extra.get(role, []))
    print("\nPages par rôle :", report.pages)
    print("États par rôle :", report.role_states)
    print("États par sorte :", report.states)
    print("Pages par largeur (px) :", report.widths)
    print("Durée (s) :", {part: round(seconds) for part, seconds in report.seconds.items()})
    print(f"Violations modérées ou mineures ({len(report.moderate)}) :")
    print("\n".join(report.moderate) or "aucune")
    assert not report.failures, f"{len(report.failures)} problèmes :\n" + "\n".join(report.failures)
    assert all(count >= 5 for count in report.pages.values()), report.pages
    assert set(STATES) <= set(report.states), report.states
    assert set(report.widths) == set(WIDTHS), report.widths
    # The accessibility statement publishes these results: it may not claim more than was tested.
    published = ACCESSIBILITY_TESTS
    assert published["pages"] <= sum(report.pages.values()), report.pages
    for role, count in published["profils"].items():
        assert count <= report.pages.get(role, 0), (role, report.pages)
    for kind, name in STATES.items():
        assert published["etats"][name] <= report.states.get(kind, 0), (kind, report.states)
    assert published["largeurs"] == WIDTHS
    for width, count in published["pages_par_largeur"].items():
        assert count <= report.widths.get(width, 0), (width, report.widths)
