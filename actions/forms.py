from decimal import Decimal

from django import forms
from django.db import transaction
from django.db.models import F, Q
from django.forms import inlineformset_factory
from django.utils import timezone
from django.utils.formats import number_format
from dsfr.forms import DsfrBaseForm

from communes.models import Beneficiaire, Commune
from pvd.files import validate_pdf
from pvd.integrity import JetonForm

from .models import (
    Axe,
    FicheAction,
    Financeur,
    Indicateur,
    LigneFinancement,
    Mesure,
    PointAvancement,
)

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def person(user) -> str:
    if user is None:
        return "une autre personne"
    return user.get_full_name() or user.email


class FicheForm(DsfrBaseForm, JetonForm, forms.ModelForm):
    """A fiche action; on update, refused when someone saved it since it was loaded."""

    # The version the form was loaded with (optimistic locking).
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    FIELDSETS = [
        ("Identification", ["reference", "titre", "axe"]),
        ("Contenu", ["description", "objectifs", "communes", "secteur"]),
        ("Porteurs", ["maitre_ouvrage_type", "maitre_ouvrage", "partenaires", "referent"]),
        (
            "Calendrier",
            [
                "date_debut_prevue",
                "date_fin_prevue",
                "date_debut_reelle",
                "date_fin_reelle",
                "jalons",
            ],
        ),
        ("Suivi", ["maturite", "avancement", "priorite", "budget_vert"]),
        ("Budget", ["cout_total", "nature"]),
        ("Club Petites villes de demain", ["partage_club"]),
    ]

    class Meta:
        model = FicheAction
        fields = [
            "reference",
            "titre",
            "axe",
            "description",
            "objectifs",
            "communes",
            "secteur",
            "maitre_ouvrage_type",
            "maitre_ouvrage",
            "partenaires",
            "referent",
            "date_debut_prevue",
            "date_fin_prevue",
            "date_debut_reelle",
            "date_fin_reelle",
            "jalons",
            "maturite",
            "avancement",
            "priorite",
            "budget_vert",
            "cout_total",
            "nature",
            "partage_club",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 4}),
            "objectifs": forms.Textarea(attrs={"rows": 3}),
            "jalons": forms.Textarea(attrs={"rows": 3}),
            # A class of its own keeps django-dsfr from adding its invalid `dsfr="dsfr"` attribute.
            "communes": forms.CheckboxSelectMultiple(attrs={"class": "pvd-communes"}),
            "date_debut_prevue": DATE,
            "date_fin_prevue": DATE,
            "date_debut_reelle": DATE,
            "date_fin_reelle": DATE,
        }

    def __init__(self, *args, beneficiaire: Beneficiaire, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.beneficiaire = beneficiaire
        self.fields["axe"].queryset = beneficiaire.axes.all()
        self.fields["axe"].empty_label = "—"
        communes = Q(membres__beneficiaire=beneficiaire, membres__actif=True)
        if self.instance.pk:
            # A commune that left the programme stays on the fiches that name it.
            communes |= Q(pk__in=self.instance.communes.values("pk"))
        self.fields["communes"].queryset = Commune.objects.filter(communes).distinct()
        self.fields["maitre_ouvrage_type"].choices = [
            ("", "—"),
            *FicheAction.MaitreOuvrage.choices,
        ]
        self.fields["cout_total"].widget.attrs["min"] = 0
        if self.instance.pk:
            self.fields["version"].required = True
            self.fields["version"].initial = self.instance.version
        else:
            del self.fields["version"]
        self.stale: FicheAction | None = None
        self.differences: list[tuple[str, str]] = []

    def fieldsets(self):
        return [(legend, [self[name] for name in names]) for legend, names in self.FIELDSETS]

    def clean_reference(self) -> str:
        reference = self.cleaned_data["reference"]
        taken = FicheAction.objects.filter(
            beneficiaire=self.instance.beneficiaire, reference=reference
        ).exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError("Une fiche de ce plan porte déjà cette référence.")
        return reference

    def clean(self):
        cleaned = super().clean()
        # The instance still holds the row as loaded by this request.
        if self.instance.pk and cleaned.get("version") not in (None, self.instance.version):
            self.refuse_stale(self.instance)
        return cleaned

    def refuse_stale(self, current: FicheAction) -> None:
        """Keep the user's input, say who saved in between, and accept the next save."""
        self.stale = current
        when = timezone.localtime(current.updated_at)
        self.add_error(
            None,
            f"Cette fiche a été modifiée entre-temps par {person(current.updated_by)} "
            f"le {when:%d/%m/%Y à %H:%M} : vos saisies sont conservées ci-dessous ; "
            "vérifiez la fiche puis enregistrez à nouveau.",
        )
        self.differences = self.differences_with(current)
        self.data = self.data.copy()
        self.data[self.add_prefix("version")] = current.version

    def differences_with(self, current: FicheAction) -> list[tuple[str, str]]:
        """The saved values that differ from the user's input, to check before saving again."""
        differences = []
        for name in self._meta.fields:
            if name == "communes" or name not in self.cleaned_data:
                continue
            field = FicheAction._meta.get_field(name)
            saved = getattr(current, name)
            if saved == self.cleaned_data[name]:
                continue
            if field.choices:
                shown = getattr(current, f"get_{name}_display")()
            elif isinstance(saved, bool):
                shown = "oui" if saved else "non"
            elif isinstance(saved, Decimal):
                shown = f"{number_format(saved, force_grouping=True)} €"
            elif hasattr(saved, "strftime"):
                shown = f"{saved:%d/%m/%Y}"
            else:
                shown = str(saved) if saved not in (None, "") else "—"
            differences.append((str(field.verbose_name).capitalize(), shown))
        return differences

    def save(self, *, financements: "BaseFinancementFormSet", user) -> FicheAction | None:
        """Save the fiche and its financing lines; None when someone saved it in between, or
        when its stored financing, once written, is above its cost (the rule of the Excel
        import too: a fiche is never financed beyond its cost)."""
        fiche = self.instance
        creating = fiche.pk is None
        try:
            with transaction.atomic():
                if fiche.pk:
                    current = FicheAction.objects.select_for_update().get(pk=fiche.pk)
                    if current.version != self.cleaned_data["version"]:
                        self.refuse_stale(
                            FicheAction.objects.select_related("updated_by").get(pk=fiche.pk)
                        )
                        return None
                    fiche.version = current.version + 1
                fiche.updated_by = user
                super().save()
                financements.instance = fiche
                financements.save()
                if message := fiche.refus_depassement():
                    raise FinancementRefuse(message)
        except FinancementRefuse as refused:
            if creating:  # rolled back: the page shows a fiche still to create
                fiche.pk, fiche._state.adding = None, True
                for form in financements.forms:
                    if form not in financements.initial_forms:
                        form.instance.pk, form.instance._state.adding = None, True
            self.add_error("cout_total", str(refused))
            return None
        return fiche


class FinancementRefuse(Exception):
    pass


class LigneFinancementForm(DsfrBaseForm, forms.ModelForm):
    class Meta:
        model = LigneFinancement
        fields = ["financeur", "dispositif", "montant", "statut", "date_decision"]
        widgets = {
            "date_decision": DATE,
            "dispositif": forms.TextInput(attrs={"placeholder": "Par exemple : DSIL 2024"}),
        }
        # A hint under one label only would put that input out of line with its row.
        help_texts = {"dispositif": ""}

    def __init__(self, *args, financeurs, financeur_choices, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["financeur"]
        field.queryset = financeurs
        # The same list for every row: one query for the page, not one per row.
        field.choices = financeur_choices
        self.fields["montant"].widget.attrs["min"] = 0


class BaseFinancementFormSet(forms.BaseInlineFormSet):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        used = Q(lignefinancement__fiche=self.instance) if self.instance.pk else Q(pk__in=[])
        self.financeurs = Financeur.objects.filter(Q(actif=True) | used).distinct()
        self.financeur_choices = [("", "—"), *((f.pk, f.nom) for f in self.financeurs)]

    def get_form_kwargs(self, index):
        return {
            **super().get_form_kwargs(index),
            "financeurs": self.financeurs,
            "financeur_choices": self.financeur_choices,
        }


FinancementFormSet = inlineformset_factory(
    FicheAction,
    LigneFinancement,
    form=LigneFinancementForm,
    formset=BaseFinancementFormSet,
    extra=3,
    can_delete=True,
)


class AxeForm(DsfrBaseForm, forms.ModelForm):
    numero = forms.IntegerField(label="Numéro", min_value=1, max_value=99)

    class Meta:
        model = Axe
        fields = ["numero", "nom", "transversal"]

    def _get_validation_exclusions(self):
        # Numbers are checked across the whole formset, so that two axes can swap theirs.
        return {*super()._get_validation_exclusions(), "numero"}


class BaseAxeFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        numeros: dict[int, str] = {}
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            numero = form.cleaned_data["numero"]
            if numero in numeros:
                raise forms.ValidationError(
                    f"Deux axes portent le numéro {numero} (« {numeros[numero]} » et "
                    f"« {form.cleaned_data['nom']} ») : chaque axe a son propre numéro."
                )
            numeros[numero] = form.cleaned_data["nom"]
        for form in self.forms:
            if not (form.instance.pk and form.cleaned_data.get("DELETE")):
                continue
            count = form.instance.fiches.count()
            if count:
                raise forms.ValidationError(
                    f"L'axe « {form.instance.nom} » porte {count} fiche{'s' if count > 1 else ''} "
                    "action : rattachez-les à un autre axe avant de le supprimer."
                )
        if not numeros:
            raise forms.ValidationError("Un plan d'action garde au moins un axe.")

    def save(self, commit=True):
        with transaction.atomic():
            # Park the axes that change number out of the way of the unique constraint.
            moving = [
                f.instance.pk
                for f in self.initial_forms
                if f in self.deleted_forms or "numero" in f.changed_data
            ]
            Axe.objects.filter(pk__in=moving).update(numero=F("numero") + 1000)
            return super().save(commit)


AxeFormSet = inlineformset_factory(
    Beneficiaire,
    Axe,
    form=AxeForm,
    formset=BaseAxeFormSet,
    extra=2,
    can_delete=True,
)


class IndicateurForm(DsfrBaseForm, forms.ModelForm):
    class Meta:
        model = Indicateur
        fields = ["type", "libelle", "unite", "cible", "frequence"]


IndicateurFormSet = inlineformset_factory(
    FicheAction, Indicateur, form=IndicateurForm, extra=2, can_delete=True
)


class MesureForm(DsfrBaseForm, JetonForm, forms.ModelForm):
    class Meta:
        model = Mesure
        fields = ["indicateur", "date", "valeur"]
        widgets = {"date": DATE}

    def __init__(self, *args, fiche: FicheAction, **kwargs):
        super().__init__(*args, prefix="mesure", **kwargs)
        self.fields["indicateur"].queryset = fiche.indicateurs.all()
        self.fields["indicateur"].empty_label = "—"

    def clean_date(self):
        value = self.cleaned_data["date"]
        if value > timezone.localdate():
            raise forms.ValidationError("Une mesure ne peut pas être datée dans le futur.")
        return value


class PointForm(DsfrBaseForm, JetonForm, forms.ModelForm):
    piece_jointe = forms.FileField(
        label="Pièce jointe (PDF, 20 Mo au plus)", required=False, validators=[validate_pdf]
    )

    class Meta:
        model = PointAvancement
        fields = ["date", "texte", "nouvel_avancement", "piece_jointe"]
        widgets = {"date": DATE, "texte": forms.Textarea(attrs={"rows": 5})}
        help_texts = {"nouvel_avancement": "Choisi, il devient l'avancement de la fiche."}

    def __init__(self, *args, fiche: FicheAction, **kwargs):
        super().__init__(*args, **kwargs)
        self.fiche = fiche
        self.fields["nouvel_avancement"].choices = [
            ("", f"Inchangé ({fiche.get_avancement_display()})"),
            *FicheAction.Avancement.choices,
        ]

    def clean_date(self):
        value = self.cleaned_data["date"]
        if value > timezone.localdate():
            raise forms.ValidationError(
                "Un point d'avancement ne peut pas être daté dans le futur."
            )
        return value

    def save(self, *, user) -> PointAvancement:
        with transaction.atomic():
            point = super().save(commit=False)
            point.fiche = self.fiche
            point.auteur = user
            point.save()
            nouveau = point.nouvel_avancement
            if nouveau:
                fiche = FicheAction.objects.select_for_update().get(pk=self.fiche.pk)
                if fiche.avancement != nouveau:
                    # A change of the fiche: the edit forms opened before it become stale.
                    fiche.avancement = nouveau
                    fiche.version += 1
                    fiche.updated_by = user
                    fiche.save(update_fields=["avancement", "version", "updated_by", "updated_at"])
        return point


class FinanceurForm(DsfrBaseForm, forms.ModelForm):
    class Meta:
        model = Financeur
        fields = ["nom", "description", "siret", "ordre", "actif"]
        error_messages = {"nom": {"unique": "Ce financeur figure déjà au catalogue."}}
