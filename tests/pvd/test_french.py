"""French everywhere: plurals, « 1er », élisions through pvd.french, never « (s) »."""

import ast
import re
from datetime import date, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template

from pvd.french import compte, date_heure_longue, date_longue, de, de_personne

ROOT = Path(settings.BASE_DIR)
TEMPLATES = sorted(p for p in (ROOT / "templates").rglob("*") if p.suffix in (".html", ".txt"))
APPS = ["actions", "carte", "communes", "conventions", "portail", "postes", "pvd", "rappels"]
APPS.append("tableaux")
PYTHON = sorted(
    p
    for app in APPS
    if (ROOT / app).is_dir()
    for p in (ROOT / app).rglob("*.py")
    if "migrations" not in p.parts
)
# « de {{ x.nom }} »: a name after « de » must go through the élision filter (« d'Ussel »).
DE_NOM = re.compile(r"\b[Dd]e \{\{\s*[\w.]*(nom|beneficiaire|commune)[\w.]*\s*\}\}")


def test_the_template_and_code_lists_are_not_empty():
    assert len(TEMPLATES) > 50 and len(PYTHON) > 50


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_templates_have_no_parenthesised_plurals_nor_unelided_names(path):
    text = path.read_text(encoding="utf-8")
    assert "(s)" not in text and "(e)" not in text, "write the plural out (compte, pluralize)"
    assert not DE_NOM.search(text), "« de {{ …nom }} »: use {{ …nom|de }} (pvd.french.de)"
    # Django's « j F Y » writes « 1 mai »: date_longue writes « 1er mai ».
    assert 'date:"j ' not in text, "use the date_longue or date_heure_longue filter"
    assert '{% now "j ' not in text, "use {% maintenant %}"


def _strings(tree: ast.AST):
    """The string literals of a module that a user may read (docstrings left out)."""
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                yield node.lineno, node.value


@pytest.mark.parametrize("path", PYTHON, ids=lambda p: str(p.relative_to(ROOT)))
def test_messages_have_no_parenthesised_plurals(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    wrong = [(line, text) for line, text in _strings(tree) if re.search(r"\w\((s|e|es)\)", text)]
    assert wrong == []


def test_french_words():
    assert date_longue(date(2026, 5, 1)) == "1er mai 2026"
    assert date_longue(date(2026, 5, 15)) == "15 mai 2026"
    assert date_heure_longue(datetime.fromisoformat("2026-05-01T07:30:00+00:00")) == (
        "1er mai 2026 à 09:30"
    )
    assert [de("Ussel"), de("Égletons"), de("Le Blanc"), de("La Courtine")] == [
        "d'Ussel",
        "d'Égletons",
        "du Blanc",
        "de La Courtine",
    ]
    assert [de_personne("Anne Martin"), de_personne("Le Gall")] == ["d'Anne Martin", "de Le Gall"]
    plurals = [compte(n, "poste vacant", "postes vacants", "aucun poste vacant") for n in (0, 1, 2)]
    assert plurals == ["aucun poste vacant", "1 poste vacant", "2 postes vacants"]


def test_the_template_filters():
    template = Template(
        "{% load pvd_format %}{{ d|date_longue }} · {{ nom|de }} · "
        '{% compte n "fiche" "fiches" "aucune fiche" %} · {% compte m "fiche" "fiches" "" %}'
    )
    context = Context({"d": date(2027, 5, 1), "nom": "Ussel – La Courtine", "n": 0, "m": 1303})
    assert template.render(context) == (
        "1er mai 2027 · d&#x27;Ussel – La Courtine · aucune fiche · 1\xa0303 fiches"
    )
