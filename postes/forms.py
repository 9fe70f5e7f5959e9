from datetime import timedelta
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from dsfr.forms import DsfrBaseForm

from communes.models import EPCI, Beneficiaire, MembreBeneficiaire
from pvd import policy
from pvd.bounds import date_passee, formfield
from pvd.files import validate_pdf
from pvd.forms import CodesField
from pvd.french import de_personne
from pvd.integrity import JetonForm, refuse_integrity_error
from pvd.models import Role, User

from .models import (
    ChangementEtat,
    CofinancementAnnee,
    Financeur,
    LigneCofinancement,
    Occupation,
    Poste,
    RegleCofinancement,
)
from .plafonds import plafond_stocke

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def manageable_beneficiaires(user):
    """Beneficiaries whose posts the user may create: national staff, or its préfecture."""
    beneficiaires = Beneficiaire.objects.actifs().select_related("departement")
    if policy.is_national(user):
        return beneficiaires
    return beneficiaires.filter(departement_id__in=policy.prefecture_departements(user))


class PosteForm(DsfrBaseForm, JetonForm, forms.ModelForm):
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

    # The fields' bounds (dates, the link's and the comment's length) are the models'.
    nouvel_etat = forms.ChoiceField(label="Nouvel état")
    date = formfield(
        ChangementEtat,
        "date",
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
    date_publication = formfield(
        Poste,
        "date_publication",
        label="Date de publication de l'offre",
        validators=[date_passee],
        widget=DATE,
    )
    lien_offre = formfield(
        Poste,
        "lien_offre",
        label="Lien vers l'offre publiée",
        assume_scheme="https",
        help_text="Par exemple l'annonce sur Place de l'emploi public.",
    )
    commentaire = formfield(
        ChangementEtat, "commentaire", label="Commentaire", widget=forms.Textarea(attrs={"rows": 3})
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


class OccupationForm(DsfrBaseForm, JetonForm, forms.ModelForm):
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

    def save(self, by, request=None) -> Occupation | None:
        """None, with the error on the form, when another person took the post meanwhile."""
        from .invitations import open_account

        poste = self.instance.poste
        with transaction.atomic():
            # The overlap is checked again under the post's lock, on the stored occupations:
            # of two « Prise de poste » sent together, the second sees the first.
            Poste.objects.select_for_update().get(pk=poste.pk)
            try:
                self.instance.clean()
            except ValidationError as error:
                self.add_error(None, error)
                return None
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


class CofinancementForm(DsfrBaseForm, JetonForm, forms.ModelForm):
    class Meta:
        model = CofinancementAnnee
        fields = ["annee", "cout_charge", "reference_dossier", "date_demande"]
        widgets = {"date_demande": DATE}

    def __init__(self, *args, poste: Poste, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.poste = poste
        if self.instance.pk:
            del self.fields["annee"]

    def _get_validation_exclusions(self):
        # The post is set by the page, not typed: its year is still checked for uniqueness.
        return super()._get_validation_exclusions() - {"poste"}

    def clean_annee(self) -> int:
        annee = self.cleaned_data["annee"]
        creation = self.instance.poste.date_creation
        if annee < creation.year:
            raise forms.ValidationError(
                f"Le poste a été créé le {creation:%d/%m/%Y} : pas de cofinancement pour {annee}."
            )
        return annee


def ligne_field(name: str, **kwargs) -> forms.Field:
    """A field of a funder's line with the model's bounds; optional (zero when left empty)."""
    if isinstance(LigneCofinancement._meta.get_field(name), models.DateField):
        kwargs["widget"] = DATE
    field = formfield(LigneCofinancement, name, **kwargs)
    field.required = False
    return field


class LigneForm(DsfrBaseForm, forms.Form):
    """One funder's amounts for the year; a row left at zero is not kept."""

    financeur = forms.ChoiceField(
        choices=Financeur.choices,
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": "Ce financeur n'est pas un cofinanceur du poste."},
    )
    montant_demande = ligne_field("montant_demande", label="Demandé (€)")
    montant_notifie = ligne_field("montant_notifie", label="Notifié (€)")
    date_notification = ligne_field("date_notification", label="Date de notification")
    montant_verse = ligne_field("montant_verse", label="Versé (€)")
    date_versement = ligne_field("date_versement", label="Date du versement")

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
        value = self.initial.get("financeur") or self.data.get(self.add_prefix("financeur"))
        return Financeur(value).label if value in Financeur.values else "Financeur inconnu"


class BaseLigneFormSet(forms.BaseFormSet):
    def __init__(self, *args, poste: Poste, year_form: CofinancementForm, **kwargs):
        super().__init__(*args, **kwargs)
        self.poste = poste
        self.year_form = year_form
        self.plafond = None

    def clean(self):
        """Each funder once; the ceilings are checked on the stored lines when saving."""
        if any(self.errors):
            return
        seen = set()
        for form in self:
            financeur = form.cleaned_data["financeur"]
            if financeur in seen:
                raise forms.ValidationError(
                    f"{Financeur(financeur).label} figure deux fois : une ligne par financeur."
                )
            seen.add(financeur)


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


class PlafondDepasse(Exception):
    """Rolls back a year whose stored lines, once written, are above its ceilings."""

    def __init__(self, errors: list[str]):
        super().__init__(errors)
        self.errors = errors


def save_cofinancement(
    year_form: CofinancementForm, formset: BaseLigneFormSet
) -> CofinancementAnnee | None:
    """Write the year and the funders' lines posted, then check the ceilings on every line
    of the year as stored (a funder left out of the post keeps its stored line), the post
    locked so that two writers of its years or its occupations run one after the other.
    None, with the errors on the forms, when refused."""
    creating = year_form.instance.pk is None
    try:
        with transaction.atomic():
            Poste.objects.select_for_update().get(pk=formset.poste.pk)
            annee = year_form.save()
            list(annee.lignes.select_for_update())
            for form in formset:
                data = dict(form.cleaned_data)
                financeur = data.pop("financeur")
                if not any(
                    data[n] for n in ("montant_demande", "montant_notifie", "montant_verse")
                ):
                    annee.lignes.filter(financeur=financeur).delete()
                    continue
                LigneCofinancement.objects.update_or_create(
                    annee=annee, financeur=financeur, defaults=data
                )
            formset.plafond = plafond_stocke(annee)
            lignes = annee.lignes.all()
            errors = formset.plafond.erreurs(
                {li.financeur: li.montant_notifie for li in lignes if li.montant_notifie}
            )
            if errors:
                raise PlafondDepasse(errors)
    except (PlafondDepasse, IntegrityError) as refused:
        if creating:  # the row was rolled back: the form shows a year still to create
            year_form.instance.pk = None
            year_form.instance._state.adding = True
        if isinstance(refused, PlafondDepasse):
            formset.non_form_errors().extend(refused.errors)
        else:
            refuse_integrity_error(year_form)
        return None
    return annee


class RegleForm(DsfrBaseForm, JetonForm, forms.ModelForm):
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
