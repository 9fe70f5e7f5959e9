from django import forms
from django.db import transaction
from django.forms import inlineformset_factory
from django.utils import timezone
from dsfr.forms import DsfrBaseForm

from communes.models import EPCI, Commune
from pvd import policy
from pvd.bounds import date_passee, date_plausible, formfield
from pvd.files import validate_pdf
from pvd.integrity import JetonForm
from pvd.models import User

from .models import Convention, Partie, ScanSigne, SecteurIntervention, sha256_of

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ConventionForm(DsfrBaseForm, JetonForm, forms.ModelForm):
    class Meta:
        model = Convention
        fields = [
            "type",
            "convention_modifiee",
            "titre",
            "objet",
            "date_redaction",
            "date_entree_vigueur",
            "duree_annees",
            "date_fin",
        ]
        widgets = {
            "objet": forms.Textarea(attrs={"rows": 4}),
            "date_redaction": DATE,
            "date_entree_vigueur": DATE,
            "date_fin": DATE,
        }

    def __init__(self, *args, beneficiaire, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.beneficiaire = beneficiaire
        self.fields["convention_modifiee"].queryset = beneficiaire.conventions.signees().exclude(
            type=Convention.Type.AVENANT
        )
        self.fields["convention_modifiee"].empty_label = "—"
        self.fields["titre"].required = False
        self.fields["titre"].help_text = "Laissé vide, il est formé du type et du bénéficiaire."
        if self.instance.pk:
            # The kind of a convention is chosen once, at its creation.
            del self.fields["type"]
            if self.instance.type != Convention.Type.AVENANT:
                del self.fields["convention_modifiee"]

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("titre"):
            kind = cleaned.get("type") or self.instance.type
            if kind:
                self.instance.titre = Convention.titre_par_defaut(kind, self.instance.beneficiaire)
                cleaned["titre"] = self.instance.titre
        return cleaned

    @transaction.atomic
    def save(self, commit: bool = True) -> Convention:
        """A new convention comes with its usual signatories (``default_parties``)."""
        adding = self.instance._state.adding
        convention = super().save(commit)
        if commit and adding:
            for partie in default_parties(convention):
                partie.save()
        return convention

    def _post_clean(self):
        super()._post_clean()
        self.instance.compute_date_fin()


def default_parties(convention: Convention) -> list[Partie]:
    """The usual signatories: the communes, their EPCI and the État."""
    beneficiaire = convention.beneficiaire
    communes = [
        m.commune for m in beneficiaire.membres.filter(actif=True).select_related("commune")
    ]
    parties = [
        Partie(convention=convention, nature=Partie.Nature.COMMUNE, commune=c, ordre=i)
        for i, c in enumerate(sorted(communes, key=lambda c: -(c.population or 0)))
    ]
    if beneficiaire.epci_id:
        parties.append(
            Partie(
                convention=convention, nature=Partie.Nature.EPCI, epci=beneficiaire.epci, ordre=50
            )
        )
    parties.append(Partie(convention=convention, nature=Partie.Nature.ETAT, ordre=60))
    for partie in parties:
        partie.role = Partie.Role.SIGNATAIRE
    return parties


class PartieForm(DsfrBaseForm, forms.ModelForm):
    class Meta:
        model = Partie
        fields = [
            "nature",
            "commune",
            "epci",
            "nom_partenaire",
            "role",
            "representant",
            "date_deliberation",
            "date_signature",
            "ordre",
        ]
        widgets = {"date_deliberation": DATE, "date_signature": DATE}

    def __init__(self, *args, convention: Convention, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        beneficiaire = convention.beneficiaire
        if self.instance.pk and self.instance.is_etat:
            if not policy.may_set_state_party(user, convention):
                self.fields["nature"].disabled = self.fields["role"].disabled = True
            if not policy.may_record_signature(user, convention, self.instance):
                self.fields["date_signature"].disabled = True
                self.fields[
                    "date_signature"
                ].help_text = "La signature de l'État est enregistrée par la préfecture."
        elif not policy.may_set_state_party(user, convention):
            self.fields["nature"].choices = [
                choice
                for choice in self.fields["nature"].choices
                if choice[0] != Partie.Nature.ETAT
            ]
        self.fields["commune"].queryset = Commune.objects.filter(
            membres__beneficiaire=beneficiaire
        ).distinct()
        self.fields["epci"].queryset = EPCI.objects.filter(
            communes__membres__beneficiaire=beneficiaire
        ).distinct()
        self.fields["nom_partenaire"].widget.attrs["list"] = "partenaires"


class BasePartieFormSet(forms.BaseInlineFormSet):
    def __init__(self, *args, user: User, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "convention": self.instance, "user": self.user}

    def add_fields(self, form, index):
        super().add_fields(form, index)
        is_state = form.instance.pk and form.instance.is_etat
        if is_state and not policy.may_set_state_party(self.user, self.instance):
            del form.fields["DELETE"]  # only the State removes the État

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        if not any(f.cleaned_data.get("role") == Partie.Role.SIGNATAIRE for f in kept):
            raise forms.ValidationError("Une convention a au moins un signataire.")


PartieFormSet = inlineformset_factory(
    Convention, Partie, form=PartieForm, formset=BasePartieFormSet, extra=2, can_delete=True
)


class SecteurForm(DsfrBaseForm, forms.ModelForm):
    class Meta:
        model = SecteurIntervention
        fields = ["commune", "nom", "description", "centre_ville_principale"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, convention: Convention, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["commune"].queryset = Commune.objects.filter(
            membres__beneficiaire=convention.beneficiaire
        ).distinct()


class BaseSecteurFormSet(forms.BaseInlineFormSet):
    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "convention": self.instance}


SecteurFormSet = inlineformset_factory(
    Convention,
    SecteurIntervention,
    form=SecteurForm,
    formset=BaseSecteurFormSet,
    extra=2,
    can_delete=True,
)


class ScanForm(DsfrBaseForm, forms.Form):
    fichier = forms.FileField(
        label="Convention signée (PDF, 20 Mo au plus)", validators=[validate_pdf]
    )

    def save(self, convention: Convention, user) -> ScanSigne:
        upload = self.cleaned_data["fichier"]
        return ScanSigne.objects.create(
            convention=convention,
            fichier=upload,
            nom_original=upload.name[:255],
            taille=upload.size,
            sha256=sha256_of(upload),
            uploaded_by=user,
        )


class ResiliationForm(DsfrBaseForm, forms.Form):
    date = forms.DateField(label="Date de la résiliation", widget=DATE, validators=[date_plausible])
    # Bounded as the convention's field (pvd/bounds.py), and required here.
    motif = formfield(
        Convention,
        "motif_resiliation",
        label="Motif de la résiliation",
        required=True,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Il est conservé et affiché sur la page de la convention.",
        error_messages={"required": "Indiquez le motif de la résiliation."},
    )

    def clean_date(self):
        value = self.cleaned_data["date"]
        if value > timezone.localdate():
            raise forms.ValidationError("La date ne peut pas être dans le futur.")
        return value


class DateForm(DsfrBaseForm, forms.Form):
    date = forms.DateField(label="Date", widget=DATE, validators=[date_plausible])

    def __init__(self, *args, label: str = "Date", required: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["date"].label = label
        self.fields["date"].required = required

    def clean_date(self):
        value = self.cleaned_data["date"]
        if value and value > timezone.localdate():
            raise forms.ValidationError("La date ne peut pas être dans le futur.")
        return value


class DateAdhesionForm(DsfrBaseForm, forms.Form):
    date = forms.DateField(
        label="Date de signature de la convention d'adhésion",
        help_text="Elle fait courir les 18 mois laissés pour signer la convention-cadre.",
        validators=[date_plausible, date_passee],
        widget=DATE,
    )


class ImportDatesAdhesionForm(DsfrBaseForm, forms.Form):
    fichier = forms.FileField(
        label="Fichier des dates d'adhésion (CSV ou Excel .xlsx, 2 Mo au plus)",
        help_text="Une ligne par bénéficiaire : son identifiant ou le code INSEE d'une de ses "
        "communes, et la date d'adhésion (JJ/MM/AAAA).",
    )
