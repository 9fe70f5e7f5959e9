from django import forms
from django.db import transaction
from django.db.models import Q
from dsfr.forms import DsfrBaseForm

from actions.models import FicheAction, LigneFinancement
from communes.models import Beneficiaire, Departement, Region
from conventions.models import Convention
from pvd import policy
from pvd.bounds import MONTANT, formfield
from pvd.integrity import JetonForm
from pvd.models import User

from .models import (
    Decision,
    Instance,
    Membre,
    PointOrdreDuJour,
    Presence,
    Reunion,
    Suite,
    nom_par_defaut,
)

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


def perimetre_q(instance: Instance, prefix: str = "") -> Q:
    """The beneficiaries an instance covers (a relation to them, through ``prefix``)."""
    if instance.beneficiaire_id:
        return Q(**{f"{prefix}beneficiaire_id": instance.beneficiaire_id})
    if instance.departement_id:
        return Q(**{f"{prefix}beneficiaire__departement_id": instance.departement_id})
    return Q(**{f"{prefix}beneficiaire__departement__region_id": instance.region_id})


class ReunionForm(DsfrBaseForm, JetonForm, forms.ModelForm):
    class Meta:
        model = Reunion
        fields = ["date", "heure_debut", "heure_fin", "lieu", "lien_visio"]
        widgets = {"date": DATE, "heure_debut": TIME, "heure_fin": TIME}


class InstanceForm(DsfrBaseForm, forms.ModelForm):
    """What the convention fixes for an instance: its minimum meetings a year, its secretariat."""

    class Meta:
        model = Instance
        fields = ["nom", "reunions_par_an", "secretariat"]

    def clean_reunions_par_an(self):
        value = self.cleaned_data["reunions_par_an"]
        if self.instance.type == Instance.Type.CLCT and value is not None and value < 2:
            raise forms.ValidationError(
                "Le comité local de cohésion territoriale se réunit au moins deux fois par an "
                "(CGCT L1232-2)."
            )
        return value


class InstanceCreateForm(DsfrBaseForm, JetonForm, forms.ModelForm):
    """A new instance: its type, the one territory it covers (among those where the user may
    set one up, ``policy.instance_perimeters_q``), its frequency and secretariat."""

    class Meta:
        model = Instance
        fields = [
            "type",
            "beneficiaire",
            "departement",
            "region",
            "nom",
            "reunions_par_an",
            "secretariat",
        ]
        help_texts = {
            "beneficiaire": "Comité de projet, comité technique : le bénéficiaire qu'il suit.",
            "departement": "Comité local de cohésion territoriale, comité de pilotage "
            "départemental : le département.",
            "region": "Comité régional des financeurs : la région.",
            "nom": "Laissez vide : le type et le territoire, « Comité de projet d'Ussel – "
            "La Courtine » ou « Comité local de cohésion territoriale – Indre (36) ».",
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        where = policy.instance_perimeters_q(user)
        beneficiaires = Beneficiaire.objects.order_by("nom", "pk")
        departements = Departement.objects.order_by("code")
        regions = Region.objects.order_by("nom")
        if where is not None:
            beneficiaires = beneficiaires.filter(where[0])
            departements = departements.filter(where[1])
            regions = regions.filter(where[2]).distinct()
        self.fields["beneficiaire"].queryset = beneficiaires
        self.fields["departement"].queryset = departements
        self.fields["region"].queryset = regions
        self.fields["nom"].required = False
        if not (policy.is_national(user) or policy.is_prefecture(user)):
            # A chef de projet sets up the instances of their beneficiaries only.
            del self.fields["departement"], self.fields["region"]
            self.fields["type"].choices = [
                (value, label)
                for value, label in self.fields["type"].choices
                if Instance.PERIMETRES.get(value, "beneficiaire") == "beneficiaire"
            ]

    def _post_clean(self):
        # The default name, before the model's checks (type × perimeter, one per territory).
        perimetre = (
            self.cleaned_data.get("beneficiaire")
            or self.cleaned_data.get("departement")
            or self.cleaned_data.get("region")
        )
        if not self.cleaned_data.get("nom") and perimetre and self.cleaned_data.get("type"):
            self.cleaned_data["nom"] = nom_par_defaut(self.cleaned_data["type"], perimetre)[:200]
        super()._post_clean()
        if not self.errors and not policy.may_create_instance(self.user, self.instance):
            self.add_error(None, "Vous ne pouvez pas créer cette instance sur ce territoire.")


class MembreForm(DsfrBaseForm, JetonForm, forms.ModelForm):
    class Meta:
        model = Membre
        fields = ["organisation", "personne", "role", "email"]

    def save(self, commit: bool = True) -> Membre:
        membre = super().save(commit=False)
        if membre.email:
            # The member's account, when the address is one: they then read the instance.
            membre.user = User.objects.filter(email__iexact=membre.email, is_active=True).first()
        if commit:
            membre.save()
        return membre


class PointForm(DsfrBaseForm, JetonForm, forms.ModelForm):
    class Meta:
        model = PointOrdreDuJour
        fields = ["ordre", "intitule", "fiche", "convention"]

    def __init__(self, *args, user, instance_gouvernance: Instance, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["fiche"].queryset = (
            FicheAction.objects.for_user(user)
            .filter(perimetre_q(instance_gouvernance))
            .order_by("beneficiaire__nom", "reference")
        )
        self.fields["convention"].queryset = (
            Convention.objects.for_user(user)
            .filter(perimetre_q(instance_gouvernance))
            .order_by("beneficiaire__nom", "pk")
        )


class PresencesForm(DsfrBaseForm):
    """One choice per member, and who represented them."""

    def __init__(self, *args, reunion: Reunion, **kwargs):
        super().__init__(*args, **kwargs)
        self.reunion = reunion
        self.membres = list(reunion.instance.membres.all())
        existing = {p.membre_id: p for p in reunion.presences.all()}
        choices = [("", "Non renseigné"), *Presence.Statut.choices]
        for membre in self.membres:
            presence = existing.get(membre.pk)
            self.fields[f"statut_{membre.pk}"] = forms.ChoiceField(
                label=str(membre),
                choices=choices,
                required=False,
                initial=presence.statut if presence else "",
            )
            field = formfield(Presence, "represente_par", required=False)
            field.label = f"{membre} : représenté par"
            field.initial = presence.represente_par if presence else ""
            self.fields[f"represente_{membre.pk}"] = field

    def clean(self):
        cleaned = super().clean()
        for membre in self.membres:
            statut = cleaned.get(f"statut_{membre.pk}")
            par = cleaned.get(f"represente_{membre.pk}")
            if statut == Presence.Statut.REPRESENTE and not par:
                self.add_error(f"represente_{membre.pk}", "Indiquez qui représentait ce membre.")
            if par and statut != Presence.Statut.REPRESENTE:
                self.add_error(
                    f"represente_{membre.pk}",
                    "Un représentant n'a de sens que pour un membre « représenté ».",
                )
        return cleaned

    @transaction.atomic
    def save(self) -> None:
        for membre in self.membres:
            statut = self.cleaned_data[f"statut_{membre.pk}"]
            if not statut:
                Presence.objects.filter(reunion=self.reunion, membre=membre).delete()
                continue
            Presence.objects.update_or_create(
                reunion=self.reunion,
                membre=membre,
                defaults={
                    "statut": statut,
                    "represente_par": self.cleaned_data[f"represente_{membre.pk}"],
                },
            )


class DecisionForm(DsfrBaseForm, JetonForm, forms.ModelForm):
    """A decision, what it concerns, the financing line it changes (its new notified amount)
    and its first follow-up."""

    ligne = forms.ModelChoiceField(
        label="Ligne de financement décidée",
        queryset=LigneFinancement.objects.none(),
        required=False,
        help_text="La ligne passe au statut « notifié », au montant et à la date de la réunion.",
    )
    montant = forms.DecimalField(
        label="Montant notifié (€)",
        max_digits=14,
        decimal_places=2,
        required=False,
        validators=MONTANT,
    )
    suite = formfield(Suite, "intitule", required=False)
    responsable = forms.ModelChoiceField(
        label="Responsable de la suite", queryset=User.objects.none(), required=False
    )
    echeance = formfield(Suite, "echeance", required=False, widget=DATE)

    class Meta:
        model = Decision
        fields = ["type", "texte", "fiches", "conventions"]

    def __init__(self, *args, user, reunion: Reunion, **kwargs):
        super().__init__(*args, **kwargs)
        self.reunion = reunion
        perimetre = reunion.instance
        fiches = FicheAction.objects.for_user(user).filter(perimetre_q(perimetre))
        self.fields["fiches"].queryset = fiches.order_by("beneficiaire__nom", "reference")
        self.fields["fiches"].required = False
        self.fields["conventions"].queryset = Convention.objects.for_user(user).filter(
            perimetre_q(perimetre)
        )
        self.fields["ligne"].queryset = (
            LigneFinancement.objects.filter(fiche__in=fiches)
            .select_related("fiche", "financeur")
            .order_by("fiche__reference", "financeur__ordre", "pk")
        )
        self.fields["ligne"].label_from_instance = lambda ligne: (
            f"{ligne.fiche.reference} – {ligne.financeur.nom}"
            f"{' (' + ligne.dispositif + ')' if ligne.dispositif else ''}"
        )
        # The follow-up's person: the instance's members with an account, and the writer.
        self.fields["responsable"].queryset = User.objects.filter(
            Q(membres_instances__instance=perimetre) | Q(pk=user.pk), is_active=True
        ).distinct()
        self.fields["responsable"].label_from_instance = lambda u: u.get_full_name() or u.email
        self.fields["texte"].widget.attrs["rows"] = 4

    def clean(self):
        cleaned = super().clean()
        ligne, montant = cleaned.get("ligne"), cleaned.get("montant")
        if ligne and montant is None:
            self.add_error("montant", "Indiquez le montant décidé pour cette ligne.")
        if montant is not None and not ligne:
            self.add_error("ligne", "Choisissez la ligne de financement dont le montant change.")
        suite = cleaned.get("suite")
        if suite and not (cleaned.get("responsable") and cleaned.get("echeance")):
            self.add_error("suite", "Une suite à donner a un responsable et une échéance.")
        if not suite and (cleaned.get("responsable") or cleaned.get("echeance")):
            self.add_error("suite", "Décrivez la suite à donner.")
        return cleaned

    @transaction.atomic
    def save(self) -> Decision:
        decision = super().save(commit=False)
        decision.reunion = self.reunion
        decision.save()
        self.save_m2m()
        ligne = self.cleaned_data.get("ligne")
        if ligne:
            # Read again, locked: the amount is changed on what is stored.
            ligne = LigneFinancement.objects.select_for_update().get(pk=ligne.pk)
            ligne.montant = self.cleaned_data["montant"]
            ligne.statut = LigneFinancement.Statut.NOTIFIE
            ligne.date_decision = self.reunion.date
            ligne.full_clean()
            ligne.save(update_fields=["montant", "statut", "date_decision"])
            decision.lignes.add(ligne)
            decision.fiches.add(ligne.fiche_id)
        if self.cleaned_data.get("suite"):
            Suite.objects.create(
                decision=decision,
                intitule=self.cleaned_data["suite"],
                responsable=self.cleaned_data["responsable"],
                echeance=self.cleaned_data["echeance"],
            )
        return decision


class DecisionUpdateForm(DsfrBaseForm, forms.ModelForm):
    """A decision's wording and what it concerns; the financing line it changed keeps the
    amount decided (a new amount is a new decision)."""

    class Meta:
        model = Decision
        fields = ["type", "texte", "fiches", "conventions"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        perimetre = self.instance.reunion.instance
        self.fields["fiches"].queryset = (
            FicheAction.objects.for_user(user)
            .filter(perimetre_q(perimetre))
            .order_by("beneficiaire__nom", "reference")
        )
        self.fields["fiches"].required = False
        self.fields["conventions"].queryset = Convention.objects.for_user(user).filter(
            perimetre_q(perimetre)
        )
        self.fields["texte"].widget.attrs["rows"] = 4


class SuiteForm(DsfrBaseForm, forms.ModelForm):
    class Meta:
        model = Suite
        fields = ["intitule", "responsable", "echeance"]
        widgets = {"echeance": DATE}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance.decision.reunion.instance
        # The instance's members with an account, the writer, and whoever holds it now.
        self.fields["responsable"].queryset = User.objects.filter(
            Q(membres_instances__instance=instance)
            | Q(pk=user.pk)
            | Q(pk=self.instance.responsable_id),
            is_active=True,
        ).distinct()
        self.fields["responsable"].label_from_instance = lambda u: u.get_full_name() or u.email


class StatutForm(forms.Form):
    statut = forms.ChoiceField(choices=Reunion.Statut.choices)
