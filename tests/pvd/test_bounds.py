"""Issue 20, item 1: one bound per field. Every form of the project and every column of the
Excel import template get the same edge values and give the same verdict: refused, with a
French message (the bounds are the models', pvd/bounds.py)."""

import importlib
import re
from decimal import Decimal

import pytest
from django import forms
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.mail import EmailMessage
from django.db import models

from actions.excel import COLONNES_FICHES, COLONNES_FINANCEMENTS, Plan, ValeurInvalide
from actions.models import FicheAction, LigneFinancement, ensure_axes
from pvd.bounds import une_ligne
from pvd.forms import CodesField

pytestmark = pytest.mark.django_db

APPS = ["pvd", "communes", "conventions", "postes", "actions", "gouvernance", "rappels"]
APPS += ["tableaux", "carte", "club"]
APPS += ["portail", "opendata", "api"]

DATES = {"31/12/9999": "9999-12-31", "1949": "1949-12-31"}
ENORME = "9999999999999"
UNE_LIGNE = {"retour à la ligne": "Ussel\nLa Courtine", "NUL": "Ussel\x00", "1 Mo": "x" * 2**20}
TEXTE_LONG = {"NUL": "Ussel\x00", "1 Mo": "x" * 2**20}
URL = "https://example.fr/" + "a" * 182  # 201 characters
# A measure or a target may be negative (a fall); it is bounded in size all the same.
NEGATIFS_PERMIS = {"cible", "valeur"}
# Not text a user types for the portal to keep: secrets, and lists of codes parsed apart.
SANS_TEXTE = (forms.EmailField, forms.URLField)
ENGLISH = re.compile(r"\b(Ensure|Enter|value|This field|characters|must)\b")


def project_forms() -> list[type[forms.BaseForm]]:
    for app in APPS:
        try:
            importlib.import_module(f"{app}.forms")
        except ModuleNotFoundError:
            continue
    found, todo = [], [forms.BaseForm]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in APPS and cls not in found:
            found.append(cls)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__name__}")


def verdict(form_class, name: str, value) -> list[str]:
    """The messages of a value typed in a field: the form field's, then the model field's
    validators (a model form runs them in full_clean); [] when accepted."""
    field = form_class.base_fields[name]
    try:
        cleaned = field.clean(value)
    except ValidationError as error:
        return error.messages
    model = getattr(getattr(form_class, "_meta", None), "model", None)
    try:
        model_field = model._meta.get_field(name) if model else None
    except FieldDoesNotExist:
        model_field = None
    if model_field is not None and not model_field.is_relation:
        try:
            model_field.run_validators(cleaned)
        except ValidationError as error:
            return error.messages
    return []


def edges(field: forms.Field, name: str) -> dict[str, str]:
    """The edge values that field must refuse."""
    if isinstance(field, forms.DateField):
        return DATES
    if isinstance(field, forms.DecimalField):
        values = {"énorme": ENORME}
        if name not in NEGATIFS_PERMIS:
            values["-1"] = "-1"
        if name == "taux":
            values["101 %"] = "101"
        return values
    if isinstance(field, forms.IntegerField):
        return {"énorme": "9" * 20}
    if isinstance(field, forms.URLField):
        return {"201 caractères": URL}
    if isinstance(field, SANS_TEXTE) or type(field).__name__.endswith("PasswordField"):
        return {}
    if isinstance(field, forms.CharField):
        # A list of codes may be pasted one a line: bounded like a long text.
        multiline = isinstance(field.widget, forms.Textarea) or isinstance(field, CodesField)
        return TEXTE_LONG if multiline else UNE_LIGNE
    return {}


def test_the_walk_covers_the_forms_of_every_app():
    names = {f"{c.__module__}.{c.__name__}" for c in project_forms()}
    for known in ("postes.forms.EtatForm", "postes.forms.LigneForm", "actions.forms.FicheForm"):
        assert known in names
    assert "conventions.forms.ConventionForm" in names and "portail.forms.UserForm" in names


def test_every_form_refuses_the_edge_values_in_french():
    accepted, english = [], []
    for form_class in project_forms():
        for name, field in form_class.base_fields.items():
            for label, value in edges(field, name).items():
                messages = verdict(form_class, name, value)
                where = f"{form_class.__module__}.{form_class.__name__}.{name} ← {label}"
                if not messages:
                    accepted.append(where)
                elif any(ENGLISH.search(m) or "%(" in m for m in messages):
                    english.append(f"{where}: {messages}")
    assert accepted == [], "\n".join(accepted)
    assert english == [], "\n".join(english)


IMPORT_EDGES = {
    "date": {"31/12/9999": "31/12/9999", "1949": "31/12/1949"},
    "montant": {"-1": "-1", "énorme": ENORME},
    "texte": UNE_LIGNE,
    "reference": UNE_LIGNE,
}
TEXTES_LONGS = {"description", "objectifs", "jalons"}


def test_the_import_template_refuses_the_same_values(ussel_la_courtine):
    ensure_axes(ussel_la_courtine)
    plan = Plan(ussel_la_courtine)
    accepted = []
    for modele, colonnes in (
        (FicheAction, COLONNES_FICHES),
        (LigneFinancement, COLONNES_FINANCEMENTS),
    ):
        for colonne in colonnes:
            values = IMPORT_EDGES.get(colonne.type, {})
            if colonne.champ in TEXTES_LONGS:
                values = TEXTE_LONG
            for label, value in values.items():
                try:
                    plan.lire(colonne, value, modele)
                except ValeurInvalide:
                    continue
                accepted.append(f"{modele.__name__} « {colonne.titre} » ← {label}")
    assert accepted == []


def test_the_fiche_form_and_the_import_agree_on_each_column(ussel_la_courtine):
    """The same value typed in the web form and in the import: the same verdict."""
    from actions.forms import FicheForm, LigneFinancementForm

    ensure_axes(ussel_la_courtine)
    plan = Plan(ussel_la_courtine)
    values = ["31/12/2100", "01/01/1950", "31/12/9999", "-1", "12", ENORME, "a\nb", "texte"]
    for form_class, colonnes in (
        (FicheForm, COLONNES_FICHES),
        (LigneFinancementForm, COLONNES_FINANCEMENTS),
    ):
        modele = form_class._meta.model
        for colonne in colonnes:
            if colonne.type not in IMPORT_EDGES or colonne.champ not in form_class.base_fields:
                continue
            for value in values:
                try:
                    plan.lire(colonne, value, modele)
                    import_ok = True
                except ValeurInvalide:
                    import_ok = False
                web_value = value
                if colonne.type == "date" and re.fullmatch(r"\d\d/\d\d/\d{4}", value):
                    web_value = "-".join(reversed(value.split("/")))
                web_ok = not verdict(form_class, colonne.champ, web_value)
                assert web_ok == import_ok, (colonne.titre, value)


def test_a_rate_message_with_a_percent_sign_is_not_formatted():
    from postes.models import RegleCofinancement

    field = RegleCofinancement._meta.get_field("taux")
    with pytest.raises(ValidationError) as error:
        field.run_validators(Decimal("101"))
    assert error.value.messages == ["Le taux va de 0 à 100 %."]


def test_a_subject_is_folded_to_one_line():
    assert une_ligne("Rappel : Ussel\r\nLa Courtine\x00 ") == "Rappel : Ussel La Courtine"
    message = EmailMessage(une_ligne("Bilan de Ussel\nLa Courtine"), "corps", to=["a@b.fr"])
    assert "\n" not in message.message()["Subject"]


def test_every_subject_sent_by_the_project_goes_through_the_folding_helper():
    """One helper for subjects: every ``subject=`` / ``EmailMessage(`` / ``send_mail(`` of the
    project builds its subject with pvd.bounds.une_ligne (or a constant)."""
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.BASE_DIR)
    offenders = []
    for app in APPS:
        for path in (root / app).glob("**/*.py"):
            if "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for value in re.findall(r"\bsubject\s*=\s*([^,\n]+)", line):
                    value = value.strip().rstrip(")")
                    if value.startswith("une_ligne(") or re.fullmatch(r'"[^"{]*"', value):
                        continue
                    offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert offenders == []


def test_model_fields_bounded():
    """The kernel's bounds are on the fields, not only on forms (the admin and the import
    read them)."""
    from postes.models import LigneCofinancement, Occupation

    for model, name in [
        (FicheAction, "date_fin_prevue"),
        (LigneFinancement, "montant"),
        (Occupation, "date_fin"),
        (LigneCofinancement, "montant_notifie"),
    ]:
        assert model._meta.get_field(name).validators, (model, name)
    assert isinstance(FicheAction._meta.get_field("titre"), models.CharField)


# Issue 20, item 3: every create view turns a unique constraint's race into a form error --------

# A decision of selection has no unique key: two sent at once are two decisions of the day,
# refused afterwards by the state machine (the second finds the beneficiary already moved).
SANS_CLE_UNIQUE = {"communes:decision-create"}


def test_every_create_view_turns_a_race_into_a_form_error():
    import inspect

    from django.urls import URLResolver, get_resolver

    from pvd.integrity import IntegrityErrorMixin

    def walk(resolver, namespace=""):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace != "admin":
                    inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                    yield from walk(pattern, inner)
            elif pattern.name and "create" in pattern.name:
                yield f"{namespace}{pattern.name}", pattern.callback

    unguarded = []
    for name, callback in walk(get_resolver()):
        view = getattr(callback, "view_class", None)
        if name in SANS_CLE_UNIQUE or (view and issubclass(view, IntegrityErrorMixin)):
            continue
        source = "".join(
            inspect.getsource(c)
            for c in (view.__mro__ if view else [callback])
            if c.__module__.split(".")[0] in APPS
        )
        if not re.search(r"create_once|save_or_refuse|refuse_integrity_error", source):
            unguarded.append(name)
    assert unguarded == []


def test_the_admin_forms_refuse_the_same_values(rf):
    """The admin's forms are built from the models: the same bounds, the same verdicts."""
    from django.contrib import admin

    from pvd.models import User

    request = rf.get("/admin/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    accepted = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in APPS:
            continue
        form_classes = [model_admin.get_form(request)]
        form_classes += [
            i.get_formset(request).form for i in model_admin.get_inline_instances(request)
        ]
        for form_class in form_classes:
            for name, field in form_class.base_fields.items():
                if name in ("password", "password1", "password2"):
                    continue
                for label, value in edges(field, name).items():
                    if not verdict(form_class, name, value):
                        accepted.append(f"{form_class._meta.model.__name__}.{name} ← {label}")
    assert accepted == [], "\n".join(accepted)


def test_a_reminder_subject_with_a_line_break_is_sent_on_one_line(cdp_ussel):
    """A beneficiary named with a line break (stored before the bounds) in a reminder's
    subject: Django refused the header and the whole run stopped."""
    from rappels import emails

    message = emails.build(cdp_ussel, [], [], "Rappel : Ussel\nLa Courtine", "Bonjour")
    assert message.message()["Subject"] == "Rappel : Ussel La Courtine"


# A create form that has no natural unique key carries a one-time token.
CLE_NATURELLE = {
    "portail:user-create": "the e-mail address is unique",
    "communes:beneficiaire-create": "a commune is in one active beneficiary",
    "actions:financeur-create": "a funder's name is unique",
}


def test_every_create_form_carries_a_token_or_a_natural_key():
    from django.urls import URLResolver, get_resolver

    from actions.forms import MesureForm
    from gouvernance.forms import (
        DecisionForm,
        InstanceCreateForm,
        MembreForm,
        PointForm,
        ReunionForm,
    )
    from postes.forms import CofinancementForm
    from pvd.integrity import JetonForm

    forms_of = {
        "actions:mesure-create": MesureForm,
        "postes:cofinancement-create": CofinancementForm,
        "gouvernance:membre-create": MembreForm,
        "gouvernance:reunion-create": ReunionForm,
        "gouvernance:point-create": PointForm,
        "gouvernance:decision-create": DecisionForm,
        "gouvernance:instance-create": InstanceCreateForm,
    }

    def walk(resolver, namespace=""):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace != "admin":
                    inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                    yield from walk(pattern, inner)
            elif pattern.name and "create" in pattern.name:
                yield f"{namespace}{pattern.name}", pattern.callback

    missing = []
    for name, callback in walk(get_resolver()):
        form_class = forms_of.get(name) or getattr(callback.view_class, "form_class", None)
        if name not in CLE_NATURELLE and not (form_class and issubclass(form_class, JetonForm)):
            missing.append(name)
    assert missing == []
