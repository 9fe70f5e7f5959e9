from allauth.account import forms as allauth_forms
from django import forms
from django.contrib.auth.password_validation import password_validators_help_texts
from dsfr.forms import DsfrBaseForm


def _plain_email_field(form) -> None:
    field = form.fields.get("login") or form.fields.get("email")
    field.label = "Adresse électronique"
    field.widget.attrs.pop("placeholder", None)
    # DsfrBaseForm built the bound fields already: rebuild them with the new label.
    form._bound_fields_cache.clear()


class LoginForm(DsfrBaseForm, allauth_forms.LoginForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _plain_email_field(self)
        self.fields["password"].widget.attrs.pop("placeholder", None)


class ResetPasswordForm(DsfrBaseForm, allauth_forms.ResetPasswordForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _plain_email_field(self)


def _plain_password_help(form) -> None:
    """The password rules as one sentence: allauth's list cannot sit in the label's hint <span>."""
    form.fields["password1"].help_text = " ".join(password_validators_help_texts())
    form._bound_fields_cache.clear()


class ResetPasswordKeyForm(DsfrBaseForm, allauth_forms.ResetPasswordKeyForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _plain_password_help(self)


class ChangePasswordForm(DsfrBaseForm, allauth_forms.ChangePasswordForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _plain_password_help(self)


class CodesField(forms.CharField):
    """Official codes typed by a person, separated by commas, spaces or new lines."""

    # Some 35 000 communes' codes of 5 characters and their separators: room for all.
    LONGUEUR_MAX = 250_000

    def to_python(self, value) -> list[str]:
        text = super().to_python(value) or ""
        if len(text) > self.LONGUEUR_MAX or "\x00" in text:
            raise forms.ValidationError(
                "Cette liste de codes est illisible : des codes séparés par des virgules, "
                "des espaces ou des retours à la ligne."
            )
        return [c.upper() for c in text.replace(",", " ").replace(";", " ").split()]
