"""Two identical submissions at once both pass the form's uniqueness checks, and the database
refuses the second: that is a form error for the user, never a 500."""

from django import forms
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

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
