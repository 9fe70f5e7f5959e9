import hashlib
from datetime import date

from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from communes.models import EPCI, Beneficiaire, Commune
from pvd.bounds import (
    TEXTE_LONG,
    TEXTE_LONG_VALIDATORS,
    date_passee,
    date_plausible,
    texte_une_ligne,
)
from pvd.files import pdf_upload_name
from pvd.french import de
from pvd.jobs import Job

DELAI_CONVENTION_CADRE = relativedelta(months=18)
ALERTE_ECHEANCE = relativedelta(months=3)
# A signed convention ending within this horizon is announced: on the dashboards and by the
# reminders (rappels/regles.py: fin_de_convention), from the same day.
HORIZON_FIN_CONVENTION = relativedelta(months=6)


def en_vigueur_q(prefix: str = "") -> Q:
    """A convention in force (``STATUTS_EN_VIGUEUR``), on conventions reached through
    ``prefix`` (``"conventions__"`` from a beneficiary)."""
    return Q(**{f"{prefix}statut__in": STATUTS_EN_VIGUEUR})


def finissante_q(day: date, prefix: str = "", horizon: date | None = None) -> Q:
    """In force and ending between ``day`` and the announcement horizon (``horizon``: that
    day, already computed — when ``day`` is a query's parameter, tableaux/lecture.py)."""
    return en_vigueur_q(prefix) & Q(
        **{
            f"{prefix}date_fin__gte": day,
            f"{prefix}date_fin__lte": horizon or day + HORIZON_FIN_CONVENTION,
        }
    )


class ConventionQuerySet(models.QuerySet):
    def for_user(self, user) -> "ConventionQuerySet":
        return self.filter(beneficiaire__in=Beneficiaire.objects.for_user(user))

    def signees(self) -> "ConventionQuerySet":
        return self.filter(statut__in=Convention.STATUTS_SIGNES)

    def en_vigueur(self) -> "ConventionQuerySet":
        return self.filter(en_vigueur_q())

    def finissantes(self, day: date) -> "ConventionQuerySet":
        """In force and ending within ``HORIZON_FIN_CONVENTION`` of ``day``."""
        return self.filter(finissante_q(day))


class Convention(models.Model):
    class Type(models.TextChoices):
        ADHESION = "adhesion", "Convention d'adhésion"
        CADRE = "cadre", "Convention-cadre PVD valant ORT"
        AVENANT = "avenant", "Avenant"

    class Statut(models.TextChoices):
        BROUILLON = "brouillon", "Brouillon"
        EN_SIGNATURE = "en_signature", "En signature"
        SIGNEE = "signee", "Signée"
        MODIFIEE = "modifiee", "Modifiée par avenant"
        ECHUE = "echue", "Échue"
        RESILIEE = "resiliee", "Résiliée"

    # « Avenant » is masculine: its status agrees with it (« Avenant signé »).
    STATUTS_MASCULINS = {
        "signee": "Signé",
        "modifiee": "Modifié par avenant",
        "echue": "Échu",
        "resiliee": "Résilié",
    }

    class Source(models.TextChoices):
        PORTAIL = "portail", "Saisie sur le portail"
        IMPORT_ORT = "import_ort", "Suivi national des ORT"

    STATUTS_MODIFIABLES = (Statut.BROUILLON, Statut.EN_SIGNATURE)
    STATUTS_SIGNES = (Statut.SIGNEE, Statut.MODIFIEE, Statut.ECHUE, Statut.RESILIEE)

    beneficiaire = models.ForeignKey(
        Beneficiaire,
        verbose_name="bénéficiaire",
        on_delete=models.PROTECT,
        related_name="conventions",
    )
    type = models.CharField("type", max_length=20, choices=Type.choices)
    convention_modifiee = models.ForeignKey(
        "self",
        verbose_name="convention modifiée",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="avenants",
        help_text="Pour un avenant : la convention qu'il modifie.",
    )
    titre = models.CharField("titre", max_length=300, validators=[texte_une_ligne])
    objet = models.TextField(
        "objet", blank=True, max_length=TEXTE_LONG, validators=TEXTE_LONG_VALIDATORS
    )
    statut = models.CharField(
        "statut", max_length=20, choices=Statut.choices, default=Statut.BROUILLON
    )
    date_redaction = models.DateField(
        "date de rédaction", default=timezone.localdate, validators=[date_plausible]
    )
    date_envoi_signature = models.DateField(
        "envoyée pour signature le", null=True, blank=True, validators=[date_plausible]
    )
    date_signature = models.DateField(
        "date de signature",
        null=True,
        blank=True,
        help_text="La date de la dernière signature des signataires.",
        validators=[date_plausible, date_passee],
    )
    date_signature_prevue = models.CharField(
        "signature envisagée",
        max_length=200,
        blank=True,
        help_text="Texte libre du suivi national, par exemple « 4e trimestre 2023 ».",
    )
    date_entree_vigueur = models.DateField(
        "entrée en vigueur", null=True, blank=True, validators=[date_plausible]
    )
    duree_annees = models.PositiveSmallIntegerField("durée (années)", null=True, blank=True)
    date_fin = models.DateField("date de fin", null=True, blank=True, validators=[date_plausible])
    motif_resiliation = models.TextField(
        "motif de la résiliation",
        blank=True,
        max_length=TEXTE_LONG,
        validators=TEXTE_LONG_VALIDATORS,
    )
    source = models.CharField(
        "origine", max_length=20, choices=Source.choices, default=Source.PORTAIL
    )
    created_by = models.ForeignKey(
        "pvd.User",
        verbose_name="créée par",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Who recorded the signature on the portal and when, apart from the day it was signed.
    signature_enregistree_par = models.ForeignKey(
        "pvd.User",
        verbose_name="signature enregistrée par",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    signature_enregistree_le = models.DateTimeField(
        "signature enregistrée le", null=True, blank=True
    )
    created_at = models.DateTimeField("créée le", auto_now_add=True)
    updated_at = models.DateTimeField("modifiée le", auto_now=True)

    objects = ConventionQuerySet.as_manager()

    class Meta:
        verbose_name = "convention"
        ordering = ["beneficiaire", "date_redaction", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(type="avenant", convention_modifiee__isnull=False)
                | (~Q(type="avenant") & Q(convention_modifiee__isnull=True)),
                name="avenant_points_to_its_convention",
                violation_error_message="Un avenant, et lui seul, modifie une convention.",
            ),
            models.CheckConstraint(
                condition=Q(date_fin__isnull=True)
                | Q(date_entree_vigueur__isnull=True)
                | Q(date_fin__gte=models.F("date_entree_vigueur")),
                name="convention_ends_after_it_starts",
                violation_error_message="La date de fin précède l'entrée en vigueur.",
            ),
        ]

    def __str__(self) -> str:
        return self.titre

    @property
    def statut_label(self) -> str:
        """The status as shown next to the document's name, agreeing with it."""
        if self.type == self.Type.AVENANT:
            return self.STATUTS_MASCULINS.get(self.statut, self.get_statut_display())
        return self.get_statut_display()

    @property
    def is_editable(self) -> bool:
        return self.statut in self.STATUTS_MODIFIABLES

    @staticmethod
    def titre_par_defaut(kind: str, beneficiaire: Beneficiaire) -> str:
        return f"{TITRES[kind]} – {beneficiaire.nom}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.type == self.Type.AVENANT:
            if not self.convention_modifiee_id:
                errors["convention_modifiee"] = "Indiquez la convention que cet avenant modifie."
            elif self.convention_modifiee.beneficiaire_id != self.beneficiaire_id:
                errors["convention_modifiee"] = (
                    "Un avenant ne peut modifier qu'une convention du même bénéficiaire."
                )
            elif self.convention_modifiee.statut not in self.STATUTS_SIGNES:
                errors["convention_modifiee"] = (
                    "Seule une convention signée se modifie par avenant."
                )
        elif self.convention_modifiee_id:
            errors["convention_modifiee"] = "Seul un avenant modifie une autre convention."
        if self.date_fin and self.date_entree_vigueur and self.date_fin < self.date_entree_vigueur:
            errors["date_fin"] = "La date de fin ne peut pas précéder l'entrée en vigueur."
        if errors:
            raise ValidationError(errors)

    def compute_date_fin(self) -> None:
        if self.date_entree_vigueur and self.duree_annees and not self.date_fin:
            self.date_fin = self.date_entree_vigueur + relativedelta(years=self.duree_annees)

    # State changes -------------------------------------------------------------------

    def perimeter_errors(self) -> list[str]:
        if self.type != self.Type.CADRE:
            return []
        if not self.secteurs.filter(centre_ville_principale=True).exists():
            return [
                "Le périmètre de l'ORT doit comprendre le centre-ville de la ville principale "
                "de l'EPCI (article L303-2 du code de la construction et de l'habitation)."
            ]
        return []

    def signature_errors(self) -> list[str]:
        errors = []
        signataires = list(self.parties.filter(role=Partie.Role.SIGNATAIRE))
        if not signataires:
            errors.append("La convention n'a aucun signataire.")
        errors += [
            f"Il manque la date de signature de : {p}." for p in signataires if not p.date_signature
        ]
        if not self.scans.exists():
            errors.append(
                "Déposez la convention signée (scan) : c'est elle qui fait foi de la signature."
            )
        return errors + self.perimeter_errors()

    def mark_sent(self, *, on: date | None = None) -> None:
        if self.statut != self.Statut.BROUILLON:
            raise ValidationError("Seul un brouillon peut être envoyé pour signature.")
        errors = self.perimeter_errors()
        if not self.parties.filter(role=Partie.Role.SIGNATAIRE).exists():
            errors.append("Ajoutez au moins un signataire avant l'envoi.")
        if errors:
            raise ValidationError(errors)
        self.statut = self.Statut.EN_SIGNATURE
        self.date_envoi_signature = on or timezone.localdate()
        self.save(update_fields=["statut", "date_envoi_signature", "updated_at"])

    def mark_signed(self, *, by=None) -> None:
        """Signed once every signataire has signed: the last signature dates the convention;
        ``by`` and now are who recorded it and when."""
        if self.statut not in self.STATUTS_MODIFIABLES:
            raise ValidationError("Cette convention est déjà signée : elle évolue par avenant.")
        errors = self.signature_errors()
        if errors:
            raise ValidationError(errors)
        signed_on = max(p.date_signature for p in self.parties.filter(role=Partie.Role.SIGNATAIRE))
        if signed_on > timezone.localdate():
            raise ValidationError(
                f"La dernière signature est datée du {signed_on:%d/%m/%Y}, dans le futur : "
                "corrigez la date de signature des signataires."
            )
        with transaction.atomic():
            self.statut = self.Statut.SIGNEE
            self.date_signature = signed_on
            self.signature_enregistree_par = by
            self.signature_enregistree_le = timezone.now()
            if not self.date_entree_vigueur:
                self.date_entree_vigueur = self.date_signature
            self.compute_date_fin()
            self.save(
                update_fields=[
                    "statut",
                    "date_signature",
                    "signature_enregistree_par",
                    "signature_enregistree_le",
                    "date_entree_vigueur",
                    "date_fin",
                    "updated_at",
                ]
            )
            if self.type == self.Type.AVENANT:
                amended = self.convention_modifiee
                if amended.statut == self.Statut.SIGNEE:
                    amended.statut = self.Statut.MODIFIEE
                    amended.save(update_fields=["statut", "updated_at"])

    def complete_signature_date(self, on: date, *, by=None) -> None:
        """A convention known to be signed (national tracking) whose date was missing."""
        if self.statut not in self.STATUTS_SIGNES or self.date_signature:
            raise ValidationError("Seule une convention signée sans date peut être datée.")
        date_passee(on)
        self.date_signature = on
        self.signature_enregistree_par = by
        self.signature_enregistree_le = timezone.now()
        if not self.date_entree_vigueur:
            self.date_entree_vigueur = on
        self.compute_date_fin()
        self.save(
            update_fields=[
                "date_signature",
                "signature_enregistree_par",
                "signature_enregistree_le",
                "date_entree_vigueur",
                "date_fin",
                "updated_at",
            ]
        )

    @property
    def is_resiliable(self) -> bool:
        return self.statut in STATUTS_EN_VIGUEUR

    def resilier(self, *, on: date, motif: str) -> None:
        """Terminated early: its end becomes that date, and the reason is kept."""
        if not self.is_resiliable:
            raise ValidationError("Seule une convention signée peut être résiliée.")
        if not motif.strip():
            raise ValidationError("Indiquez le motif de la résiliation.")
        self.statut = self.Statut.RESILIEE
        self.date_fin = on
        self.motif_resiliation = motif.strip()
        self.save(update_fields=["statut", "date_fin", "motif_resiliation", "updated_at"])

    def latest_document(self):
        return self.documents.filter(statut=DocumentConvention.Statut.PRET).first()


# In force: signed, or signed then amended by an avenant (neither ended nor terminated).
STATUTS_EN_VIGUEUR = (Convention.Statut.SIGNEE, Convention.Statut.MODIFIEE)


# The titles of each kind of convention: in full (the PDF's heading, a convention's default
# name) and short (the PDF's running header).
TITRES = {
    Convention.Type.ADHESION: "Convention d'adhésion au programme Petites villes de demain",
    Convention.Type.CADRE: (
        "Convention-cadre Petites villes de demain valant opération de revitalisation de territoire"
    ),
    Convention.Type.AVENANT: "Avenant",
}
TITRES_COURTS = {
    Convention.Type.ADHESION: "Convention d'adhésion PVD",
    Convention.Type.CADRE: "Convention-cadre PVD valant ORT",
    Convention.Type.AVENANT: "Avenant",
}


class Partie(models.Model):
    """A party to a convention: signatory, or named « en présence de »."""

    class Nature(models.TextChoices):
        COMMUNE = "commune", "Commune"
        EPCI = "epci", "EPCI"
        ETAT = "etat", "État (préfet)"
        PARTENAIRE = "partenaire", "Partenaire"

    class Role(models.TextChoices):
        SIGNATAIRE = "signataire", "Signataire"
        EN_PRESENCE = "en_presence", "En présence de"

    PARTENAIRES = [
        "Agence nationale de la cohésion des territoires (ANCT)",
        "Banque des Territoires",
        "Agence nationale de l'habitat (Anah)",
        "Cerema",
        "Ademe",
        "Région",
        "Département",
        "Établissement public foncier (EPF)",
        "CAUE",
        "Action Logement",
    ]

    convention = models.ForeignKey(
        Convention, verbose_name="convention", on_delete=models.CASCADE, related_name="parties"
    )
    nature = models.CharField("nature", max_length=20, choices=Nature.choices)
    commune = models.ForeignKey(
        Commune, verbose_name="commune", on_delete=models.PROTECT, null=True, blank=True
    )
    epci = models.ForeignKey(
        EPCI, verbose_name="EPCI", on_delete=models.PROTECT, null=True, blank=True
    )
    nom_partenaire = models.CharField(
        "partenaire",
        max_length=200,
        blank=True,
        help_text="Par exemple : Banque des Territoires.",
        validators=[texte_une_ligne],
    )
    role = models.CharField("rôle", max_length=20, choices=Role.choices)
    representant = models.CharField(
        "représentant",
        max_length=200,
        blank=True,
        help_text="Nom et qualité, par exemple : Mme Élise Maire, maire d'Ussel.",
        validators=[texte_une_ligne],
    )
    date_deliberation = models.DateField(
        "date de la délibération",
        null=True,
        blank=True,
        help_text="Pour une collectivité : la délibération qui autorise la signature.",
        validators=[date_plausible, date_passee],
    )
    date_signature = models.DateField(
        "signée le", null=True, blank=True, validators=[date_plausible, date_passee]
    )
    ordre = models.PositiveSmallIntegerField("ordre", default=0)

    class Meta:
        verbose_name = "partie"
        # Signataires first (« signataire » sorts after « en_presence »), then their order.
        ordering = ["convention", "-role", "ordre", "pk"]

    def __str__(self) -> str:
        if self.nature == self.Nature.COMMUNE and self.commune_id:
            return f"Commune {de(self.commune.nom)}"
        if self.nature == self.Nature.EPCI and self.epci_id:
            return self.epci.nom
        if self.nature == self.Nature.ETAT:
            return "L'État, représenté par le préfet"
        return self.nom_partenaire

    @property
    def is_etat(self) -> bool:
        return self.nature == self.Nature.ETAT

    @property
    def is_collectivite(self) -> bool:
        return self.nature in (self.Nature.COMMUNE, self.Nature.EPCI)

    def clean(self) -> None:
        errors = {}
        if self.nature == self.Nature.COMMUNE and not self.commune_id:
            errors["commune"] = "Choisissez la commune."
        if self.nature == self.Nature.EPCI and not self.epci_id:
            errors["epci"] = "Choisissez l'EPCI."
        if self.nature == self.Nature.PARTENAIRE and not self.nom_partenaire.strip():
            errors["nom_partenaire"] = "Indiquez le partenaire."
        if self.date_signature and self.role != self.Role.SIGNATAIRE:
            errors["date_signature"] = "Seul un signataire signe la convention."
        if self.date_deliberation and not self.is_collectivite:
            errors["date_deliberation"] = "Seule une collectivité délibère."
        if errors:
            raise ValidationError(errors)


class SecteurIntervention(models.Model):
    """A named secteur d'intervention of an ORT, in one commune."""

    convention = models.ForeignKey(
        Convention, verbose_name="convention", on_delete=models.CASCADE, related_name="secteurs"
    )
    commune = models.ForeignKey(Commune, verbose_name="commune", on_delete=models.PROTECT)
    nom = models.CharField("nom du secteur", max_length=200, validators=[texte_une_ligne])
    description = models.TextField(
        "description", blank=True, max_length=TEXTE_LONG, validators=TEXTE_LONG_VALIDATORS
    )
    centre_ville_principale = models.BooleanField(
        "centre-ville de la ville principale de l'EPCI",
        default=False,
        help_text="Obligatoire dans toute ORT : au moins un secteur doit l'être.",
    )

    class Meta:
        verbose_name = "secteur d'intervention"
        verbose_name_plural = "secteurs d'intervention"
        ordering = ["convention", "commune__nom", "nom"]

    def __str__(self) -> str:
        return f"{self.nom} ({self.commune.nom})"


def document_upload_to(instance: "DocumentConvention", filename: str) -> str:
    return f"conventions/{instance.convention_id}/generees/{filename}"


class DocumentConvention(Job):
    """One generated PDF of a convention: each generation is a new version.

    Once the convention is signed its text is never generated again: the version generated at
    signature, with the plan d'action of that day in annex, is kept as signed; later requests
    produce a separate, dated « plan d'action à date ».
    """

    class Nature(models.TextChoices):
        CONVENTION = "convention", "Convention"
        SIGNEE = "signee", "Convention telle que signée"
        PLAN = "plan", "Plan d'action à date"

    convention = models.ForeignKey(
        Convention, verbose_name="convention", on_delete=models.CASCADE, related_name="documents"
    )
    version = models.PositiveIntegerField("version")
    nature = models.CharField(
        "document", max_length=20, choices=Nature.choices, default=Nature.CONVENTION
    )
    pdfa = models.BooleanField("PDF/A (archivage)", default=False)
    fichier = models.FileField("fichier", upload_to=document_upload_to, blank=True)
    sha256 = models.CharField("empreinte SHA-256", max_length=64, blank=True)

    TASK = "conventions.tasks.generate_convention_pdf"
    FAILED_AFTER_RETRIES = (
        "La génération du PDF a échoué après plusieurs tentatives ({error}). "
        "La version précédente reste disponible ; relancez la génération plus tard."
    )
    STALLED = (
        "La génération n'a pas abouti (interrompue). "
        "La version précédente reste disponible ; relancez la génération."
    )

    class Meta:
        verbose_name = "version générée"
        verbose_name_plural = "versions générées"
        ordering = ["convention", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["convention", "version"], name="one_number_per_generated_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.convention} – version {self.version}"

    def result_filename(self) -> str:
        if self.nature == self.Nature.PLAN:
            day = (
                timezone.localtime(self.requested_at).date()
                if self.requested_at
                else timezone.localdate()
            )
            return f"plan-action-{self.convention_id}-{day:%Y-%m-%d}-v{self.version}.pdf"
        if self.nature == self.Nature.SIGNEE:
            return f"convention-{self.convention_id}-signee-v{self.version}.pdf"
        return f"convention-{self.convention_id}-v{self.version}.pdf"


def scan_upload_to(instance: "ScanSigne", filename: str) -> str:
    return pdf_upload_name(f"conventions/{instance.convention_id}/signees")


class ScanSigne(models.Model):
    """The signed convention, scanned: the legal record."""

    convention = models.ForeignKey(
        Convention, verbose_name="convention", on_delete=models.CASCADE, related_name="scans"
    )
    fichier = models.FileField("fichier", upload_to=scan_upload_to)
    nom_original = models.CharField("nom du fichier déposé", max_length=255)
    taille = models.PositiveIntegerField("taille (octets)")
    sha256 = models.CharField("empreinte SHA-256", max_length=64)
    uploaded_by = models.ForeignKey(
        "pvd.User", verbose_name="déposé par", on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField("déposé le", auto_now_add=True)

    class Meta:
        verbose_name = "convention signée (scan)"
        verbose_name_plural = "conventions signées (scans)"
        ordering = ["convention", "-uploaded_at"]

    def __str__(self) -> str:
        return self.nom_original


def sha256_of(upload) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()
