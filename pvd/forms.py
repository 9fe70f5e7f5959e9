from allauth.account import forms as allauth_forms
from django import forms
from django.contrib.auth.password_validation import password_validators_help_texts
from dsfr.forms import DsfrBaseForm

from communes.models import EPCI, Commune, Departement, MembreBeneficiaire, Region

from .bounds import formfield, texte_une_ligne
from .integrity import JetonForm
from .models import Role, User


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


class UserForm(DsfrBaseForm, forms.ModelForm):
    first_name = formfield(User, "first_name", label="Prénom", validators=[texte_une_ligne])
    last_name = formfield(User, "last_name", label="Nom", validators=[texte_une_ligne])

    class Meta:
        model = User
        fields = ["email", "first_name", "last_name", "is_active"]
        labels = {"first_name": "Prénom", "last_name": "Nom", "is_active": "Compte actif"}

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].lower()
        if User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("Un compte existe déjà avec cette adresse électronique.")
        return email


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


class RoleForm(DsfrBaseForm, JetonForm, forms.ModelForm):
    region = forms.ModelChoiceField(
        Region.objects.all(),
        label="Région",
        required=False,
        empty_label="Aucune (France entière ou départements)",
    )
    departements = forms.ModelMultipleChoiceField(
        Departement.objects.all(),
        label="Départements",
        required=False,
        help_text="Pour une préfecture, ou un partenaire départemental.",
    )
    epci_siren = forms.CharField(
        label="SIREN de l'EPCI",
        required=False,
        max_length=9,
        help_text="Pour un président ou une présidente d'EPCI : 9 chiffres.",
    )
    commune_codes = CodesField(
        label="Codes INSEE des communes",
        required=False,
        help_text="Pour un chef de projet ou un maire, séparés par des virgules. "
        "Exemple : 19275, 23067",
    )

    beneficiaire_codes = CodesField(
        label="Bénéficiaires PVD (code INSEE d'une de leurs communes)",
        required=False,
        help_text="Pour un chef de projet : le code d'une commune de chaque bénéficiaire suivi. "
        "Exemple : 19275 pour « Ussel – La Courtine ».",
    )

    class Meta:
        model = Role
        fields = ["kind", "fonction", "organisation", "region", "departements"]

    field_order = [
        "kind",
        "fonction",
        "organisation",
        "region",
        "departements",
        "beneficiaire_codes",
        "commune_codes",
        "epci_siren",
    ]

    def clean_beneficiaire_codes(self) -> list:
        from communes.models import Beneficiaire

        codes = self.cleaned_data["beneficiaire_codes"]
        found = {
            m.commune_id: m.beneficiaire
            for m in MembreBeneficiaire.objects.filter(
                commune_id__in=codes,
                actif=True,
                beneficiaire__statut__in=Beneficiaire.STATUTS_ACTIFS,
            ).select_related("beneficiaire")
        }
        missing = [c for c in codes if c not in found]
        if missing:
            raise forms.ValidationError(
                "Aucun bénéficiaire PVD actif ne comprend : %(codes)s.",
                params={"codes": ", ".join(missing)},
            )
        return list({b.pk: b for b in found.values()}.values())

    def clean_epci_siren(self):
        siren = self.cleaned_data["epci_siren"].strip()
        if not siren:
            return None
        try:
            return EPCI.objects.get(siren=siren)
        except EPCI.DoesNotExist:
            raise forms.ValidationError(f"Aucun EPCI n'a le SIREN « {siren} ».") from None

    def clean_commune_codes(self) -> list[Commune]:
        codes = self.cleaned_data["commune_codes"]
        communes = {c.code: c for c in Commune.objects.filter(code__in=codes)}
        unknown = [c for c in codes if c not in communes]
        if unknown:
            raise forms.ValidationError(
                "Codes INSEE inconnus : %(codes)s.", params={"codes": ", ".join(unknown)}
            )
        return list(communes.values())

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        self.instance.kind = cleaned.get("kind")
        self.instance.organisation = cleaned.get("organisation", "")
        self.instance.validate_perimeter(
            region=cleaned.get("region"),
            departements=list(cleaned.get("departements") or []),
            epci=cleaned.get("epci_siren"),
            communes=cleaned.get("commune_codes") or [],
            beneficiaires=cleaned.get("beneficiaire_codes") or [],
        )
        return cleaned

    def save(self, commit: bool = True) -> Role:
        role = super().save(commit=False)
        role.epci = self.cleaned_data.get("epci_siren")
        role.save()
        role.departements.set(self.cleaned_data.get("departements") or [])
        role.communes.set(self.cleaned_data.get("commune_codes") or [])
        role.beneficiaires.set(self.cleaned_data.get("beneficiaire_codes") or [])
        return role
