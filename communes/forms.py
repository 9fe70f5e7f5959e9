from collections import Counter

from django import forms
from django.db import transaction
from django.utils import timezone
from dsfr.forms import DsfrBaseForm

from pvd import policy
from pvd.bounds import date_passee, date_plausible, formfield
from pvd.files import validate_pdf
from pvd.forms import CodesField
from pvd.integrity import JetonForm

from .models import SEUIL_POPULATION, Beneficiaire, Commune, DecisionStatut, MembreBeneficiaire


class BeneficiaireForm(DsfrBaseForm, forms.ModelForm):
    """Propose a beneficiary: one commune, or several with their EPCI."""

    commune_codes = CodesField(
        label="Codes INSEE des communes",
        help_text="Une ou plusieurs communes, séparées par des virgules. Exemple : 19275, 23067",
    )
    confirmer_epci_multiples = forms.BooleanField(
        label="Je confirme que ces communes d'EPCI différents forment un seul bénéficiaire",
        required=False,
    )
    date_proposition = forms.DateField(
        label="Date de la proposition",
        help_text="Le jour où la candidature a été proposée (courrier, comité), pas celui de sa "
        "saisie : un historique ancien se saisit avec ses vraies dates.",
        initial=timezone.localdate,
        required=False,
        validators=[date_plausible, date_passee],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    class Meta:
        model = Beneficiaire
        fields = ["nom", "motif_epci_multiples", "justification_population"]
        widgets = {
            "motif_epci_multiples": forms.Textarea(attrs={"rows": 2}),
            "justification_population": forms.Textarea(attrs={"rows": 2}),
        }
        help_texts = {"nom": "Laissé vide, il est formé des noms des communes."}

    field_order = ["commune_codes", "nom"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["nom"].required = False

    def clean_commune_codes(self) -> list[Commune]:
        codes = self.cleaned_data["commune_codes"]
        if not codes:
            raise forms.ValidationError("Indiquez au moins une commune.")
        communes = {
            c.code: c
            for c in Commune.objects.filter(code__in=codes).select_related("epci", "departement")
        }
        errors = []
        unknown = [c for c in codes if c not in communes]
        if unknown:
            errors.append(f"Codes INSEE inconnus : {', '.join(unknown)}.")
        outside = [
            c for c in communes.values() if not policy.may_select(self.user, c.departement_id)
        ]
        errors += [f"{c.nom} ({c.departement}) n'est pas dans votre département." for c in outside]
        taken = MembreBeneficiaire.objects.filter(
            commune__in=communes.values(),
            actif=True,
            beneficiaire__statut__in=Beneficiaire.STATUTS_ACTIFS,
        ).select_related("commune", "beneficiaire")
        errors += [
            f"{m.commune.nom} fait déjà partie du bénéficiaire « {m.beneficiaire.nom} »."
            for m in taken
        ]
        if errors:
            raise forms.ValidationError(errors)
        return sorted(communes.values(), key=lambda c: (-(c.population or 0), c.nom))

    def clean(self):
        cleaned = super().clean()
        communes = cleaned.get("commune_codes")
        if not communes:
            return cleaned
        epcis = {c.epci_id for c in communes}
        if len(epcis) > 1:
            if not cleaned.get("confirmer_epci_multiples"):
                self.add_error(
                    "confirmer_epci_multiples",
                    "Ces communes n'appartiennent pas au même EPCI : confirmez ce regroupement.",
                )
            if not cleaned.get("motif_epci_multiples", "").strip():
                self.add_error(
                    "motif_epci_multiples",
                    "Indiquez pourquoi des communes de plusieurs EPCI forment un bénéficiaire.",
                )
        grandes = [c for c in communes if (c.population or 0) >= SEUIL_POPULATION]
        if grandes and not cleaned.get("justification_population", "").strip():
            self.add_error(
                "justification_population",
                "Justifiez la candidature de "
                + ", ".join(f"{c.nom} ({c.population:n} habitants)" for c in grandes)
                + " : le programme vise les communes de moins de 20 000 habitants.",
            )
        return cleaned

    @transaction.atomic
    def save(self, commit: bool = True) -> Beneficiaire:
        communes = self.cleaned_data["commune_codes"]
        beneficiaire = super().save(commit=False)
        beneficiaire.nom = self.cleaned_data.get("nom") or " – ".join(c.nom for c in communes)
        beneficiaire.departement = communes[0].departement
        epcis = Counter(c.epci_id for c in communes if c.epci_id)
        beneficiaire.epci_id = epcis.most_common(1)[0][0] if epcis else None
        beneficiaire.statut = Beneficiaire.Statut.CANDIDAT
        beneficiaire.save()
        for commune in communes:
            MembreBeneficiaire.objects.create(beneficiaire=beneficiaire, commune=commune)
        beneficiaire.enregistrer_proposition(
            by=self.user, date=self.cleaned_data.get("date_proposition") or timezone.localdate()
        )
        return beneficiaire


class DecisionForm(DsfrBaseForm, JetonForm, forms.Form):
    nouveau_statut = forms.ChoiceField(label="Décision")
    # The bounds of the fields are the decision's (pvd/bounds.py).
    date_decision = formfield(
        DecisionStatut,
        "date_decision",
        label="Date de la décision",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    reference = formfield(
        DecisionStatut,
        "reference",
        label="Référence de la décision",
        help_text="Arrêté ou courrier, par exemple : arrêté préfectoral n° 2021-045.",
    )
    document = forms.FileField(
        label="Décision signée (PDF, 20 Mo au plus)",
        required=False,
        validators=[validate_pdf],
    )
    motif = formfield(
        DecisionStatut, "motif", label="Motif", widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, beneficiaire: Beneficiaire, **kwargs):
        super().__init__(*args, **kwargs)
        self.beneficiaire = beneficiaire
        self.fields["nouveau_statut"].choices = [
            (s, Beneficiaire.Statut(s).label) for s in beneficiaire.allowed_transitions()
        ]

    def clean_date_decision(self):
        value = self.cleaned_data["date_decision"]
        if value > timezone.localdate():
            raise forms.ValidationError("La date de la décision ne peut pas être dans le futur.")
        self.beneficiaire.decision_precedente_errors(value)
        return value

    def clean(self):
        cleaned = super().clean()
        statut = cleaned.get("nouveau_statut")
        if (
            statut in (Beneficiaire.Statut.NON_RETENU, Beneficiaire.Statut.RETIRE)
            and not (cleaned.get("motif") or "").strip()
        ):
            self.add_error("motif", "Indiquez le motif de cette décision.")
        return cleaned

    def save(self, user):
        """Checked again on the stored history, the row locked (``change_statut``)."""
        data = self.cleaned_data
        return self.beneficiaire.change_statut(
            data["nouveau_statut"],
            by=user,
            date_decision=data["date_decision"],
            reference=data["reference"],
            motif=data.get("motif", ""),
            document=data.get("document"),
        )
