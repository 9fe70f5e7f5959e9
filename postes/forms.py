from datetime import timedelta
from decimal import Decimal

from django import forms
from django.db import transaction
from django.utils import timezone
from dsfr.forms import DsfrBaseForm

from communes.models import EPCI, Beneficiaire, MembreBeneficiaire
from pvd import policy
from pvd.dates import date_passee
from pvd.files import validate_pdf
from pvd.forms import CodesField
from pvd.french import de_personne
from pvd.models import Role, User

from .models import (
    CofinancementAnnee,
    Financeur,
    LigneCofinancement,
    Occupation,
    Poste,
    RegleCofinancement,
    avec_anah,
)
from .plafonds import plafond_de

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def manageable_beneficiaires(user):
    """Beneficiaries whose posts the user may create: national staff, or its préfecture."""
    beneficiaires = Beneficiaire.objects.actifs().select_related("departement")
    if policy.is_national(user):
        return beneficiaires
    return beneficiaires.filter(departement_id__in=policy.prefecture_departements(user))


class PosteForm(DsfrBaseForm, forms.ModelForm):
    commune_codes = CodesField(
        label="Communes couvertes (codes INSEE)",
        required=False,
        help_text="Séparés par des virgules. Laissé vide : toutes les communes des bénéficiaires.",
    )

    class Meta:
        model = Poste
        fields = [
            "beneficiaires",
            "intitule",
            "employeur_siren",
            "type_contrat",
            "etp",
            "date_creation",
        ]
        widgets = {"date_creation": DATE, "beneficiaires": forms.SelectMultiple(attrs={"size": 6})}

    field_order = ["beneficiaires", "commune_codes"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["beneficiaires"].queryset = manageable_beneficiaires(user)
        self.fields[
            "employeur_siren"
        ].help_text = "SIREN de la commune ou de l'EPCI employeur, parmi ceux des bénéficiaires."
        if self.instance.pk and not self.is_bound:
            self.initial["commune_codes"] = ", ".join(c.code for c in self.instance.communes.all())

    def clean_date_creation(self):
        creation = self.cleaned_data["date_creation"]
        if self.instance.pk:
            first_year = self.instance.annees.order_by("annee").first()
            if first_year and first_year.annee < creation.year:
                raise forms.ValidationError(
                    f"Le poste a un cofinancement pour {first_year.annee} : il ne peut pas avoir "
                    "été créé après cette année."
                )
            first = self.instance.occupations.order_by("date_debut").first()
            if first and first.date_debut < creation:
                raise forms.ValidationError(
                    f"{first.nom_complet} a pris le poste le {first.date_debut:%d/%m/%Y} : le "
                    "poste ne peut pas avoir été créé après."
                )
        return creation

    def clean(self):
        cleaned = super().clean()
        beneficiaires = list(cleaned.get("beneficiaires") or [])
        if not beneficiaires:
            return cleaned
        if len({b.epci_id for b in beneficiaires}) > 1:
            self.add_error(
                "beneficiaires",
                "Un poste partagé réunit des bénéficiaires d'un même EPCI.",
            )
            return cleaned
        membres = MembreBeneficiaire.objects.filter(
            beneficiaire__in=beneficiaires, actif=True
        ).select_related("commune")
        communes = {m.commune.code: m.commune for m in membres}
        codes = cleaned.get("commune_codes") or list(communes)
        outside = [c for c in codes if c not in communes]
        if outside:
            self.add_error(
                "commune_codes",
                "Ces communes ne font pas partie des bénéficiaires choisis : "
                + ", ".join(outside)
                + ".",
            )
        cleaned["communes"] = [communes[c] for c in codes if c in communes]
        siren = cleaned.get("employeur_siren")
        if siren:
            employers = {c.siren: c.nom for c in communes.values() if c.siren}
            epcis = EPCI.objects.filter(siren__in={b.epci_id for b in beneficiaires if b.epci_id})
            employers.update({e.siren: e.nom for e in epcis})
            if siren not in employers:
                self.add_error(
                    "employeur_siren",
                    f"Le SIREN {siren} n'est ni celui d'une commune ni celui de l'EPCI des "
                    "bénéficiaires choisis.",
                )
            else:
                self.instance.employeur_nom = employers[siren]
        return cleaned

    @transaction.atomic
    def save(self, commit: bool = True, by=None) -> Poste:
        creating = self.instance.pk is None
        poste = super().save()
        poste.communes.set(self.cleaned_data["communes"])
        if creating:
            poste.changements.create(
                nouvel_etat=poste.etat,
                date=timezone.localdate(),
                commentaire="Poste enregistré sur le portail.",
                by=by,
            )
        return poste


class EtatForm(DsfrBaseForm, forms.Form):
    """A recruitment step recorded by hand (publication, or back to « à créer »)."""

    nouvel_etat = forms.ChoiceField(label="Nouvel état")
    date = forms.DateField(
        label="Date",
        help_text="Le jour où l'étape a eu lieu (aujourd'hui au plus tard), pas celui de la "
        "saisie.",
        initial=timezone.localdate,
        validators=[date_passee],
        widget=DATE,
    )
    fiche_de_poste = forms.FileField(
        label="Fiche de poste (PDF, 20 Mo au plus)", required=False, validators=[validate_pdf]
    )
    date_publication = forms.DateField(
        label="Date de publication de l'offre",
        required=False,
        validators=[date_passee],
        widget=DATE,
    )
    lien_offre = forms.URLField(
        label="Lien vers l'offre publiée",
        required=False,
        assume_scheme="https",
        help_text="Par exemple l'annonce sur Place de l'emploi public.",
    )
    commentaire = forms.CharField(
        label="Commentaire", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, poste: Poste, **kwargs):
        super().__init__(*args, **kwargs)
        self.poste = poste
        self.fields["nouvel_etat"].choices = [
            (e, Poste.Etat(e).label) for e in poste.allowed_transitions()
        ]

    def clean_lien_offre(self) -> str:
        lien = self.cleaned_data["lien_offre"]
        if lien and not lien.lower().startswith(("https://", "http://")):
            raise forms.ValidationError("Le lien doit commencer par https://.")
        return lien

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("nouvel_etat") == Poste.Etat.EN_RECRUTEMENT and not cleaned.get(
            "date_publication"
        ):
            self.add_error(
                "date_publication", "Indiquez la date de publication de l'offre de recrutement."
            )
        return cleaned

    def save(self, by):
        cleaned = self.cleaned_data
        fields = {}
        if cleaned["nouvel_etat"] == Poste.Etat.EN_RECRUTEMENT:
            fields = {
                "date_publication": cleaned["date_publication"],
                "lien_offre": cleaned["lien_offre"],
            }
            if cleaned.get("fiche_de_poste"):
                fields["fiche_de_poste"] = cleaned["fiche_de_poste"]
        return self.poste.change_etat(
            cleaned["nouvel_etat"],
            by=by,
            date_effet=cleaned["date"],
            commentaire=cleaned["commentaire"],
            **fields,
        )


class OccupationForm(DsfrBaseForm, forms.ModelForm):
    """A person takes the post; their portal account can be opened in the same step."""

    inviter = forms.BooleanField(
        label="Ouvrir son compte sur le portail",
        required=False,
        initial=True,
        help_text="Rôle « Chef de projet » sur les bénéficiaires du poste, retiré le jour de "
        "son départ. Un courriel d'invitation lui est envoyé.",
    )

    class Meta:
        model = Occupation
        fields = ["prenom", "nom", "email", "telephone", "date_debut", "date_fin_contrat"]
        widgets = {"date_debut": DATE, "date_fin_contrat": DATE}

    def __init__(self, *args, poste: Poste, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.poste = poste
        self.existing_user = None
        # The day it happens (or will): today unless said otherwise; a start may be planned.
        self.initial["date_debut"] = self.initial.get("date_debut") or timezone.localdate()

    def clean_email(self) -> str:
        return self.cleaned_data["email"].lower()

    def clean(self):
        cleaned = super().clean()
        debut, fin_contrat = cleaned.get("date_debut"), cleaned.get("date_fin_contrat")
        if debut and fin_contrat and fin_contrat < debut:
            self.add_error(
                "date_fin_contrat", "La fin du contrat précède la date de prise de poste."
            )
        email = cleaned.get("email")
        if cleaned.get("inviter") and email:
            user = User.objects.filter(email__iexact=email).first()
            if user is not None:
                others = sorted(
                    {r.get_kind_display() for r in user.roles.all()} - {Role.Kind.CHEF_PROJET.label}
                )
                if others:
                    self.add_error(
                        "email",
                        f"Un compte existe déjà avec cette adresse, avec le rôle « {others[0]} » : "
                        "un chef de projet a son propre compte. Indiquez une autre adresse, ou "
                        "décochez l'ouverture du compte et demandez à l'équipe nationale.",
                    )
                elif not user.is_active:
                    self.add_error(
                        "email",
                        "Le compte de cette adresse est désactivé : demandez à l'équipe "
                        "nationale de le réactiver, ou décochez l'ouverture du compte.",
                    )
                self.existing_user = user
        return cleaned

    def save(self, by, request=None) -> Occupation:
        from .invitations import open_account

        poste = self.instance.poste
        with transaction.atomic():
            Poste.objects.select_for_update().get(pk=poste.pk)
            occupation = super().save()
            poste.change_etat(
                Poste.Etat.POURVU,
                by=by,
                date_effet=occupation.date_debut,
                commentaire=f"Prise de poste {de_personne(occupation.nom_complet)}.",
            )
            if self.cleaned_data.get("inviter"):
                open_account(occupation, self.existing_user, request=request)
        return occupation


class DepartForm(DsfrBaseForm, forms.ModelForm):
    """The person leaves: the post becomes vacant the next day, their role ends that day."""

    class Meta:
        model = Occupation
        fields = ["date_fin", "motif_fin"]
        widgets = {"date_fin": DATE}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["date_fin"].required = True
        self.fields["date_fin"].label = "Date de départ (dernier jour dans le poste)"
        self.initial["date_fin"] = self.initial.get("date_fin") or timezone.localdate()
        self.fields["motif_fin"].required = True
        self.fields["motif_fin"].help_text = "Par exemple : fin de contrat, mutation, démission."

    def save(self, by) -> Occupation:
        from .invitations import end_role_if_due

        with transaction.atomic():
            occupation = super().save()
            poste = occupation.poste
            poste.change_etat(
                Poste.Etat.VACANT,
                by=by,
                date_effet=occupation.date_fin + timedelta(days=1),
                commentaire=(
                    f"Départ {de_personne(occupation.nom_complet)} : {occupation.motif_fin}"
                ),
                motif_vacance=occupation.motif_fin,
            )
            end_role_if_due(occupation, timezone.localdate())
        return occupation


class CofinancementForm(DsfrBaseForm, forms.ModelForm):
    class Meta:
        model = CofinancementAnnee
        fields = ["annee", "cout_charge", "reference_dossier", "date_demande"]
        widgets = {"date_demande": DATE}

    def __init__(self, *args, poste: Poste, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.poste = poste
        if self.instance.pk:
            del self.fields["annee"]

    def clean_annee(self) -> int:
        annee = self.cleaned_data["annee"]
        creation = self.instance.poste.date_creation
        if annee < creation.year:
            raise forms.ValidationError(
                f"Le poste a été créé le {creation:%d/%m/%Y} : pas de cofinancement pour {annee}."
            )
        return annee


class LigneForm(DsfrBaseForm, forms.Form):
    """One funder's amounts for the year; a row left at zero is not kept."""

    financeur = forms.ChoiceField(choices=Financeur.choices, widget=forms.HiddenInput)
    montant_demande = forms.DecimalField(
        label="Demandé (€)", min_value=0, max_digits=10, decimal_places=2, required=False
    )
    montant_notifie = forms.DecimalField(
        label="Notifié (€)", min_value=0, max_digits=10, decimal_places=2, required=False
    )
    date_notification = forms.DateField(label="Date de notification", required=False, widget=DATE)
    montant_verse = forms.DecimalField(
        label="Versé (€)", min_value=0, max_digits=10, decimal_places=2, required=False
    )
    date_versement = forms.DateField(label="Date du versement", required=False, widget=DATE)

    def clean(self):
        cleaned = super().clean()
        for name in ("montant_demande", "montant_notifie", "montant_verse"):
            cleaned[name] = cleaned.get(name) or Decimal("0")
        if cleaned["montant_verse"] > cleaned["montant_notifie"]:
            self.add_error("montant_verse", "Le montant versé dépasse le montant notifié.")
        if cleaned["montant_notifie"] and not cleaned.get("date_notification"):
            self.add_error("date_notification", "Indiquez la date de la notification.")
        return cleaned

    @property
    def label(self) -> str:
        return Financeur(
            self.initial.get("financeur") or self.data.get(self.add_prefix("financeur"))
        ).label


class BaseLigneFormSet(forms.BaseFormSet):
    def __init__(self, *args, poste: Poste, year_form: CofinancementForm, **kwargs):
        super().__init__(*args, **kwargs)
        self.poste = poste
        self.year_form = year_form
        self.plafond = None

    def clean(self):
        if any(self.errors) or not self.year_form.is_valid():
            return
        annee = self.year_form.cleaned_data.get("annee") or self.year_form.instance.annee
        cout = self.year_form.cleaned_data["cout_charge"]
        notifies = {f.cleaned_data["financeur"]: f.cleaned_data["montant_notifie"] for f in self}
        lignes = [LigneCofinancement(**f.cleaned_data) for f in self]
        self.plafond = plafond_de(self.poste, annee, cout, avec_anah(lignes))
        errors = self.plafond.erreurs({k: v for k, v in notifies.items() if v})
        if errors:
            raise forms.ValidationError(errors)


LigneFormSet = forms.formset_factory(LigneForm, formset=BaseLigneFormSet, extra=0)


def ligne_initial(annee: CofinancementAnnee | None) -> list[dict]:
    existing = (
        {ligne.financeur: ligne for ligne in annee.lignes.all()} if annee and annee.pk else {}
    )
    rows = []
    for financeur in Financeur:
        ligne = existing.get(financeur.value)
        row = {"financeur": financeur.value}
        if ligne:
            row.update(
                {
                    name: getattr(ligne, name)
                    for name in (
                        "montant_demande",
                        "montant_notifie",
                        "date_notification",
                        "montant_verse",
                        "date_versement",
                    )
                }
            )
        rows.append(row)
    return rows


@transaction.atomic
def save_cofinancement(year_form: CofinancementForm, formset: BaseLigneFormSet):
    annee = year_form.save()
    for form in formset:
        data = dict(form.cleaned_data)
        financeur = data.pop("financeur")
        if not any(data[n] for n in ("montant_demande", "montant_notifie", "montant_verse")):
            annee.lignes.filter(financeur=financeur).delete()
            continue
        LigneCofinancement.objects.update_or_create(annee=annee, financeur=financeur, defaults=data)
    return annee


class RegleForm(DsfrBaseForm, forms.ModelForm):
    class Meta:
        model = RegleCofinancement
        fields = [
            "libelle",
            "financeur",
            "condition",
            "date_debut",
            "date_fin",
            "taux",
            "plafond_annuel",
            "source",
        ]
        widgets = {
            "date_debut": DATE,
            "date_fin": DATE,
            "source": forms.Textarea(attrs={"rows": 3}),
        }

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            changed = [f for f in RegleCofinancement.FIGEE if f in self.changed_data]
            if changed and self.instance.lignes_notifiees().exists():
                labels = ", ".join(
                    str(RegleCofinancement._meta.get_field(f).verbose_name) for f in changed
                )
                raise forms.ValidationError(
                    f"Des montants ont été notifiés sous cette règle : {labels} ne peuvent plus "
                    "changer. Fermez-la (date de fin) et créez une nouvelle règle à partir du "
                    "jour où elle change."
                )
        return cleaned
