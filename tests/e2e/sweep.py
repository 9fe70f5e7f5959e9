"""What the accessibility sweep needs besides Playwright: which links to follow, how to
name a page's kind, and the checks run on each page (axe-core and a few RGAA criteria).

axe-core comes from npm (package.json, `npm ci`): a test asset, never served to users."""

import re
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
VNU_JAR = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING_IMPACTS = {"serious", "critical"}

# Not pages: files, downloads, exports, htmx fragments, state changes that only accept POST, the
# session's end, Django's admin (not the portal's pages) and ProConnect's outside round-trip.
# The API's documentation is Swagger UI and Redoc, served as shipped for developers (their own
# markup, checked for the CSP in tests/api and tests/e2e): not the portal's pages.
SKIPPED = re.compile(
    r"""^/(static|media|admin)/
    | /accounts/logout/
    | /accounts/proconnect/
    | /export/(departement|national) | /club/export/ | /api/v1/schema/
    | /api/v1/docs/ | /api/v1/redoc/
    | /progression/ | telecharger | modele
    | /documents/ | /scans/ | piece-jointe | /generer/
    | /supprimer/ | /envoyer/ | /signer/ | /dater/ | /detacher/
    | \.(pdf|xlsx|csv|zip|odt|docx)$
    """,
    re.VERBOSE,
)


def pattern(path: str) -> str:
    """The page's kind: its path with numbers and INSEE codes replaced, so that one fiche,
    one convention or one commune stands for all of them."""
    return re.sub(r"/(\d+|\d[\dAB]\d{3})(?=/)", "/{id}", path)


def followable(href: str | None, origin: str) -> str | None:
    """The same-origin path (without query or fragment) of a link worth visiting, or None."""
    if not href or href.startswith(("mailto:", "tel:", "javascript:")):
        return None
    url, _ = urldefrag(href)
    parts = urlsplit(url)
    if parts.scheme and f"{parts.scheme}://{parts.netloc}" != origin:
        return None
    if not parts.path.startswith("/") or SKIPPED.search(parts.path):
        return None
    return parts.path


# The RGAA criteria a test can check on the rendered page (besides axe's rules):
# 5.4 every data table has a caption, 11.1 every field a label, 12.8 no positive tabindex.
RGAA_CHECKS = """() => {
  const describe = (element) => element.outerHTML.slice(0, 160);
  const problems = [];
  for (const table of document.querySelectorAll(".fr-table table, table")) {
    const caption = table.querySelector(":scope > caption");
    if (!caption || !caption.textContent.trim()) {
      problems.push(["RGAA 5.4 tableau sans titre (caption)", describe(table)]);
    }
  }
  const fields = document.querySelectorAll(
    "input:not([type=hidden]):not([type=submit]):not([type=button]):not([type=reset]),"
    + " select, textarea"
  );
  for (const field of fields) {
    // A label, or what stands for one, with words in it (a placeholder does not count).
    const named = (text) => text && text.trim();
    const labelled = [...(field.labels || [])].some((label) => named(label.textContent))
      || named(field.getAttribute("aria-label")) || named(field.getAttribute("title"))
      || (field.getAttribute("aria-labelledby") || "").split(/\\s+/).some(
        (id) => named(document.getElementById(id)?.textContent));
    if (!labelled) problems.push(["RGAA 11.1 champ sans étiquette", describe(field)]);
  }
  for (const element of document.querySelectorAll("[tabindex]")) {
    if (parseInt(element.getAttribute("tabindex"), 10) > 0) {
      problems.push(["RGAA 12.8 tabindex positif", describe(element)]);
    }
  }
  return problems;
}"""

# RGAA 10.7: the element the keyboard reaches shows where the focus is.
FOCUS_VISIBLE = """() => {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const style = getComputedStyle(element);
  const outlined = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  return outlined || style.boxShadow !== "none" ? "" : element.outerHTML.slice(0, 160);
}"""


def run_axe(page, scope: str | None = None) -> list[dict]:
    """axe-core's WCAG 2.1 A/AA violations on the page, or only inside the element `scope`
    selects (an open dialog)."""
    return page.evaluate(
        """([tags, scope]) => axe.run(scope ? document.querySelector(scope) : document,
              {runOnly: {type: "tag", values: tags}})
            .then((results) => results.violations.map((v) => ({
              id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.map((n) => n.target.join(" ") + " — " + n.html.slice(0, 160)),
            })))""",
        [WCAG_TAGS, scope],
    )


# The DSFR dialogs (modals) and disclosures (collapses in the page's content, the breadcrumb's
# on small screens) that a visible button opens: [(id, is a modal)]. The header's menus are
# links to pages the sweep visits anyway.
OPENABLE = """() => [...document.querySelectorAll(
    ".fr-modal[id], main .fr-collapse[id], .fr-breadcrumb .fr-collapse[id]")]
  .filter((target) => [...document.querySelectorAll(
      `[aria-controls="${target.id}"]`)].some((button) => button.checkVisibility()
        && button.getAttribute("aria-expanded") !== "true"
        && !target.classList.contains("fr-modal--opened")))
  .map((target) => [target.id, target.classList.contains("fr-modal")])"""

# The error state of a form: its required fields emptied and the browser's own checks off, so
# that the server answers with its messages (and, having refused the form, changes nothing).
# Returns how many fields were emptied; 0 means the form has nothing to refuse.
EMPTY_REQUIRED = """(form) => {
  form.noValidate = true;
  let emptied = 0;
  for (const field of form.querySelectorAll("[required]")) {
    if (field.type === "checkbox" || field.type === "radio") field.checked = false;
    else if (field.tagName === "SELECT") field.selectedIndex = -1;
    else field.value = "";
    emptied += 1;
  }
  return emptied;
}"""

# A search form of the page's content (GET, with a text field to search in).
SEARCH_FIELD = (
    "main form:not([method=post]) input[type=search], main form:not([method=post]) input[name=q]"
)
NOTHING_MATCHES = "zzzz-aucun-resultat"
