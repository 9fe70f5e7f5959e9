"""Two identical submissions at once both pass the form's uniqueness checks, and the database
refuses the second: that is a form error for the user, never a 500.

A create form also carries a one-time token (``JetonForm``): the first submission claims it
in the transaction that creates the object; a double click or a second tab, even while the
first is still being written, waits for it and is sent to the object it created."""

import uuid
from collections.abc import Callable
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.utils import timezone

ALREADY_SAVED = (
    "Ces informations viennent d'être enregistrées par un autre envoi (double clic ?) : "
    "vérifiez la page avant de recommencer."
)


def refuse_integrity_error(form) -> None:
    """Put on the form (or formset) the message of the constraint the database enforced,
    found by checking the instance again now that the other row is committed."""
    is_form = isinstance(form, forms.BaseForm)
    subforms = [form] if is_form else list(form.forms)
    found = False
    for subform in subforms:
        instance = getattr(subform, "instance", None)
        if instance is None or not hasattr(instance, "validate_constraints"):
            continue
        try:
            instance.validate_unique()
            instance.validate_constraints()
        except ValidationError as error:
            found = True
            try:
                # The form's own wording of a unique error, on its field when it has it.
                subform._update_errors(error)
            except ValueError:
                subform.add_error(None, error.messages)
    if not found:
        if is_form:
            form.add_error(None, ALREADY_SAVED)
        else:
            form.non_form_errors().append(ALREADY_SAVED)
    if not is_form and found and not form.non_form_errors():
        form.non_form_errors().append(ALREADY_SAVED)


def save_or_refuse(form, save):
    """Run save() in a savepoint; on an IntegrityError, a form error and None."""
    try:
        with transaction.atomic():
            return save()
    except IntegrityError:
        refuse_integrity_error(form)
        return None


class IntegrityErrorMixin:
    """For a CreateView, UpdateView or FormView whose form_valid saves: the form again with
    the constraint's message when the database refuses the row."""

    def form_valid(self, form):
        try:
            with transaction.atomic():
                return super().form_valid(form)
        except IntegrityError:
            refuse_integrity_error(form)
            return self.form_invalid(form)


JETON = "jeton_envoi"
DEJA_ENVOYE = (
    "Ce formulaire avait déjà été envoyé (double clic ou deuxième onglet) : voici ce qui a "
    "été enregistré la première fois."
)
DEJA_ENREGISTRE = (
    "Ce formulaire avait déjà été envoyé (double clic ou deuxième onglet) : il est enregistré. "
    "Pour une nouvelle saisie, rechargez la page."
)


class JetonForm(forms.Form):
    """Mixed into a create form: a hidden one-time token, new on each blank form, kept when the
    form comes back with errors."""

    jeton_envoi = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial[JETON] = uuid.uuid4()

    def clean(self):
        from .models import EnvoiFormulaire

        cleaned = super().clean()
        jeton = cleaned.get(JETON)
        if jeton and EnvoiFormulaire.objects.filter(jeton=jeton).exists():
            raise forms.ValidationError(DEJA_ENREGISTRE)
        return cleaned


def create_once(request, form, create: Callable[[], HttpResponse]) -> HttpResponse:
    """Run ``create`` (which saves and redirects to the new object's page, or renders the form
    again) once per token: a second submission of the same form redirects to the first's
    page with a French message. The token is kept only when ``create`` redirected."""
    from .models import EnvoiFormulaire

    jeton = form.cleaned_data.get(JETON) if hasattr(form, "cleaned_data") else None
    if not jeton:
        return create()
    with transaction.atomic():
        try:
            with transaction.atomic():
                # A concurrent first submission holds this key until it commits: wait for it.
                envoi = EnvoiFormulaire.objects.create(jeton=jeton, user=request.user)
        except IntegrityError:
            return _already_sent(request, jeton)
        # A token only guards against a second click: a day later it has served its purpose.
        EnvoiFormulaire.objects.filter(
            user=request.user, created_at__lt=timezone.now() - timedelta(days=1)
        ).delete()
        response = create()
        if not isinstance(response, HttpResponseRedirect):
            transaction.set_rollback(True)  # refused: the same form may be sent again
            return response
        envoi.url = response.url[:500]
        envoi.save(update_fields=["url"])
        return response


def _already_sent(request, jeton) -> HttpResponse:
    from .models import EnvoiFormulaire

    envoi = EnvoiFormulaire.objects.filter(jeton=jeton, user=request.user).first()
    messages.info(request, DEJA_ENVOYE)
    return HttpResponseRedirect(envoi.url if envoi and envoi.url else request.path)


class CreateOnceMixin(IntegrityErrorMixin):
    """For a create view whose form mixes in JetonForm and whose form_valid is Django's: one
    object per token, and a unique constraint's race as a form error. A view with its own
    form_valid calls create_once itself."""

    def form_valid(self, form):
        parent = super().form_valid
        return create_once(self.request, form, lambda: parent(form))
