"""Registries edited by hand, checked: a task, a model or a perimeter read added without its
entry fails here, not in production."""

import ast
import re
from pathlib import Path

import pytest
from auditlog.registry import auditlog
from django.apps import apps
from django.conf import settings
from django.utils.module_loading import import_string

from pvd.audit import AUDIT_EXEMPT
from pvd.cache import digest, module_files
from pvd.jobs import HeartbeatTask
from pvd.models import Heartbeat

ROOT = Path(settings.BASE_DIR).resolve()
SKIPPED_DIRS = {".venv", "node_modules", "tests", "bench", "scripts", "migrations"}


def project_models() -> list:
    """The models of the project's own apps (not Django's, allauth's or auditlog's)."""
    models = []
    for model in apps.get_models():
        path = Path(apps.get_app_config(model._meta.app_label).path).resolve()
        # The virtualenv may live inside the project (.venv): its packages are not ours.
        if ROOT in path.parents and "site-packages" not in path.parts:
            models.append(model)
    return models


def project_files(pattern: str) -> list[Path]:
    return [
        path for path in ROOT.glob(pattern) if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts)
    ]


# Every periodic task reports a heartbeat ---------------------------------------------------------


def beat_tasks() -> list[str]:
    return sorted({entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()})


@pytest.mark.parametrize("name", beat_tasks())
def test_every_scheduled_task_is_built_on_the_heartbeat_base(name):
    assert isinstance(import_string(name), HeartbeatTask), (
        f"{name} is in CELERY_BEAT_SCHEDULE: give it @shared_task(base=HeartbeatTask), "
        "or « Santé du service » shows it late forever"
    )


@pytest.mark.django_db
def test_every_scheduled_task_records_its_success_when_it_runs():
    for name in beat_tasks():
        import_string(name).delay()

    assert sorted(Heartbeat.objects.values_list("task", flat=True)) == beat_tasks()


# Every model is audited or exempt, with its reason -----------------------------------------------


def test_every_model_is_audited_or_listed_as_exempt_with_a_reason():
    unlisted = [
        model._meta.label
        for model in project_models()
        if not auditlog.contains(model) and model._meta.label not in AUDIT_EXEMPT
    ]
    assert unlisted == [], (
        "Register these models in pvd/audit.py, or list them in AUDIT_EXEMPT with the reason"
    )
    assert all(reason.strip() for reason in AUDIT_EXEMPT.values())


def test_an_exempt_model_is_not_audited_as_well():
    labels = {model._meta.label: model for model in project_models()}
    assert set(AUDIT_EXEMPT) <= set(labels), "AUDIT_EXEMPT names a model that does not exist"
    assert [label for label in AUDIT_EXEMPT if auditlog.contains(labels[label])] == []


# The perimeter is read by the policy and the for_user QuerySets only ----------------------------

# pvd/perimeter.py computes it (User.perimeter caches it); pvd/policy.py answers every
# question about it. Elsewhere only a `for_user` QuerySet method reads it.
PERIMETER_HOMES = {"pvd/policy.py", "pvd/perimeter.py"}


def perimeter_reads(source: str) -> list[tuple[int, str]]:
    """(line, expression) of each read of a perimeter outside a `for_user` method:
    `anything.perimeter`, or an attribute of a variable named `perimeter`."""
    reads = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
            if isinstance(child, ast.Attribute) and inner != "for_user":
                value = child.value
                if child.attr == "perimeter" or (
                    isinstance(value, ast.Name) and value.id == "perimeter"
                ):
                    reads.append((child.lineno, ast.unparse(child)))
            visit(child, inner)

    visit(ast.parse(source), None)
    return reads


def test_no_perimeter_read_outside_the_policy_and_the_for_user_querysets():
    offenders = []
    for path in project_files("*/**/*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative in PERIMETER_HOMES:
            continue
        for line, expression in perimeter_reads(path.read_text(encoding="utf-8")):
            offenders.append(f"{relative}:{line} {expression}")
    for path in project_files("templates/**/*.html"):
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\.perimeter\b", text):
                offenders.append(f"{path.relative_to(ROOT).as_posix()}:{number}")
    assert offenders == [], "Ask pvd/policy.py (or a for_user QuerySet) instead"


def test_the_perimeter_scan_sees_reads_and_lets_for_user_through():
    source = (
        "def view(user):\n"
        "    perimeter = user.perimeter\n"
        "    return perimeter.national\n"
        "class QuerySet:\n"
        "    def for_user(self, user):\n"
        "        return self.filter(code__in=user.perimeter.departement_codes)\n"
    )
    assert perimeter_reads(source) == [(2, "user.perimeter"), (3, "perimeter.national")]


# A cache's key holds the code that renders it ---------------------------------------------------


def test_the_code_version_follows_every_module_the_renderer_imports(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "views.py").write_text("from . import lecture\n")
    (tmp_path / "app" / "lecture.py").write_text("def f():\n    from other.rules import x\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "__init__.py").write_text("")
    (tmp_path / "other" / "rules.py").write_text("x = 1\n")
    (tmp_path / "unrelated.py").write_text("y = 1\n")

    files = module_files("app.views", root=tmp_path)
    assert {path.relative_to(tmp_path).as_posix() for path in files} == {
        "app/__init__.py",
        "app/views.py",
        "app/lecture.py",
        "other/__init__.py",
        "other/rules.py",
    }
    before = digest(files, tmp_path)
    (tmp_path / "other" / "rules.py").write_text("x = 2\n")
    assert digest(files, tmp_path) != before
