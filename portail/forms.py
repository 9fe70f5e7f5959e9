from django import forms
from dsfr.forms import DsfrBaseForm

from communes.models import (
    EPCI,
    Commune,
    Departement,
    MembreBeneficiaire,
    MiseAJourReferentiel,
    Region,
)
from pvd.bounds import formfield, texte_une_ligne
from pvd.forms import CodesField
from pvd.integrity import JetonForm
from pvd.models import Role, User

from .referentiel import check_upload


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
        fields = ["kind", "fonction", "organisation", "financeurs", "region", "departements"]
        # A class of its own keeps django-dsfr from adding its invalid `dsfr="dsfr"` attribute.
        widgets = {"financeurs": forms.CheckboxSelectMultiple(attrs={"class": "pvd-financeurs"})}

    field_order = [
        "kind",
        "fonction",
        "organisation",
        "financeurs",
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
        # Only a partner follows funders' money (pvd/policy.py: partner_funders).
        partenaire = role.kind == Role.Kind.PARTENAIRE
        role.financeurs.set(self.cleaned_data.get("financeurs") or [] if partenaire else [])
        return role


class MiseAJourReferentielForm(DsfrBaseForm, JetonForm, forms.ModelForm):
    """The official files of a refresh: each one read by its importer before it is kept."""

    class Meta:
        model = MiseAJourReferentiel
        fields = [*MiseAJourReferentiel.FICHIERS, "date_liste"]
        help_texts = {
            "cog": "Fichier « communes » du COG (TYPECOM, COM, REG, DEP, LIBELLE…), en CSV.",
            "siren": "Obligatoire avec le COG : com_code;com_siren;epci_siren;…",
            "populations": "Facultatif : COM;PMUN;…",
            "liste_pvd": "Liste ANCT (insee_com, lib_com, id_pvd…).",
            "ort": "Suivi national des ORT (Code commune, Signée ?…).",
            "coordonnees": "code_insee, longitude_centre, latitude_centre…",
            "date_liste": "Obligatoire pour la liste data.gouv.fr (JJ/MM/AAAA), qui ne la donne "
            "pas.",
        }

    def clean(self):
        cleaned = super().clean()
        given = [name for name in MiseAJourReferentiel.FICHIERS if cleaned.get(name)]
        if not given and not self.errors:
            raise forms.ValidationError("Déposez au moins un fichier.")
        if bool(cleaned.get("cog")) != bool(cleaned.get("siren")):
            raise forms.ValidationError(
                "Le COG et la table communes ↔ SIREN vont ensemble : déposez les deux."
            )
        if cleaned.get("populations") and not cleaned.get("cog"):
            self.add_error("populations", "Les populations s'importent avec le COG.")
        for name in given:
            if name in self.errors:
                continue
            try:
                check_upload(cleaned[name], name)
            except forms.ValidationError as error:
                self.add_error(name, error)
        return cleaned


class DeploiementForm(DsfrBaseForm, JetonForm, forms.Form):
    fichier = forms.FileField(
        label="Tableau des personnes (CSV ou Excel .xlsx, 2 Mo au plus)",
        help_text="Une ligne par personne et par rôle : chef de projet (avec son poste et ses "
        "bénéficiaires), préfecture (son département), élu (sa commune). Partez du modèle.",
    )

    def clean_fichier(self):
        from .deploiement import FichierRefuse, lire

        upload = self.cleaned_data["fichier"]
        try:
            lire(upload)  # a file that is not a table of people is refused at once
        except FichierRefuse as error:
            raise forms.ValidationError(error.messages) from None
        upload.seek(0)
        return upload


class RenvoiInvitationForm(JetonForm):
    """The resend button: a one-time token, so that a double click sends once."""
