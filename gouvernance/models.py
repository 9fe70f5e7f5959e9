"""Governance: the instances (comité de projet, CLCT…), their meetings, and the decisions
taken there, linked to the fiches, conventions and financing lines they change.

An instance covers one perimeter: a beneficiary (comité de projet, comité technique), a
département (CLCT, comité de pilotage départemental) or a région (comité régional des
financeurs). By law the CLCT meets at least twice a year (CGCT L1232-2); a comité de projet's
frequency is written in each convention (one a year by default, docs/domaine.md).
"""

from datetime import date

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import (
    Case,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from communes.models import Beneficiaire, Departement
from pvd.bounds import TEXTE_LONG_VALIDATORS, date_plausible, texte_une_ligne
from pvd.db import AddMonthsOf
from pvd.french import de
from pvd.jobs import Job, JobQuerySet

# A meeting held whose relevé de décisions is still not published after this: late.
DELAI_RELEVE = relativedelta(days=15)
REUNIONS_CLCT = 2  # CGCT L1232-2 : « au moins deux fois par an »
DECISIONS_FIGEES = (
    "Le relevé de décisions de cette réunion est publié (ou en cours de publication) : ses "
    "décisions ne changent plus. Enregistrez la modification lors d'une prochaine réunion."
)


class InstanceQuerySet(models.QuerySet):
    def for_user(self, user) -> "InstanceQuerySet":
        """Who reads the beneficiary reads its instances; the préfecture (and national staff)
        its département's and région's; a member reads the instances they sit in."""
        perimeter = user.perimeter
        if perimeter.sees_everything:
            return self
        prefectures = perimeter.prefecture_departement_codes
        membre = Membre.objects.filter(instance=OuterRef("pk"), user=user)
        departements = Departement.objects.filter(
            region=OuterRef("region_id"), code__in=prefectures
        )
        return self.filter(
            Q(beneficiaire__in=Beneficiaire.objects.for_user(user))
            | Q(departement_id__in=prefectures)
            | Exists(departements)
            | Exists(membre)
        )

    def with_echeance(self) -> "InstanceQuerySet":
        """``derniere``: its last meeting held; ``echeance``: when the next one is due, 12
        months / the minimum a year after the last meeting held (or after its creation)."""
        held = Reunion.objects.filter(instance=OuterRef("pk"), statut=Reunion.Statut.TENUE)
        derniere = models.Subquery(
            held.order_by().values("instance").annotate(d=Max("date")).values("d"),
            output_field=models.DateField(),
        )
        depuis = Coalesce(derniere, TruncDate("created_at"), output_field=models.DateField())
        # 12 // n months: one expression, the last meeting's subquery written once.
        mois = ExpressionWrapper(Value(12) / F("reunions_par_an"), output_field=IntegerField())
        echeance = Case(
            When(reunions_par_an__range=(1, 12), then=AddMonthsOf(depuis, mois)),
            output_field=models.DateField(),
        )
        return self.annotate(derniere=derniere, echeance=echeance)

    def en_retard(self, today: date) -> "InstanceQuerySet":
        """No meeting held in the last 12 / minimum-per-year months."""
        return self.with_echeance().filter(echeance__lte=today)


class Instance(models.Model):
    class Type(models.TextChoices):
        COMITE_PROJET = "comite_projet", "Comité de projet"
        COMITE_TECHNIQUE = "comite_technique", "Comité technique"
        COPIL_DEPARTEMENTAL = "copil_departemental", "Comité de pilotage départemental"
        CLCT = "clct", "Comité local de cohésion territoriale"
        FINANCEURS = "financeurs", "Comité régional des financeurs"
        AUTRE = "autre", "Autre instance"

    type = models.CharField("type", max_length=30, choices=Type.choices)
    nom = models.CharField("nom", max_length=200, validators=[texte_une_ligne])
    beneficiaire = models.ForeignKey(
        Beneficiaire,
        verbose_name="bénéficiaire",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="instances",
    )
    departement = models.ForeignKey(
        Departement,
        verbose_name="département",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="instances",
    )
    region = models.ForeignKey(
        "communes.Region",
        verbose_name="région",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="instances",
    )
    reunions_par_an = models.PositiveSmallIntegerField(
        "réunions par an (minimum)",
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(12)],
        help_text="Comité local de cohésion territoriale : deux par an au moins (CGCT L1232-2).",
    )
    secretariat = models.CharField(
        "secrétariat", max_length=200, blank=True, validators=[texte_une_ligne]
    )
    created_at = models.DateTimeField("créée le", auto_now_add=True)

    objects = InstanceQuerySet.as_manager()

    class Meta:
        verbose_name = "instance de gouvernance"
        verbose_name_plural = "instances de gouvernance"
        ordering = ["type", "nom"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(beneficiaire__isnull=False, departement__isnull=True, region__isnull=True)
                    | Q(beneficiaire__isnull=True, departement__isnull=False, region__isnull=True)
                    | Q(beneficiaire__isnull=True, departement__isnull=True, region__isnull=False)
                ),
                name="instance_one_perimeter",
            ),
            models.CheckConstraint(
                condition=~Q(type="clct") | Q(reunions_par_an__gte=REUNIONS_CLCT),
                name="clct_meets_twice_a_year",
            ),
            # ``UNIQUES``, on what is stored: two submissions racing cannot both create one.
            models.UniqueConstraint(
                fields=["beneficiaire"],
                condition=Q(type="comite_projet"),
                name="one_comite_projet_per_beneficiaire",
                violation_error_message="Ce bénéficiaire a déjà son comité de projet.",
            ),
            models.UniqueConstraint(
                fields=["departement"],
                condition=Q(type="clct"),
                name="one_clct_per_departement",
                violation_error_message="Ce département a déjà son comité local de cohésion "
                "territoriale.",
            ),
        ]

    def __str__(self) -> str:
        return self.nom

    @property
    def perimetre(self):
        return self.beneficiaire or self.departement or self.region

    @property
    def departement_code(self) -> str | None:
        if self.beneficiaire_id:
            return self.beneficiaire.departement_id
        return self.departement_id

    # The perimeter each type covers (« autre »: any).
    PERIMETRES = {
        Type.COMITE_PROJET: "beneficiaire",
        Type.COMITE_TECHNIQUE: "beneficiaire",
        Type.COPIL_DEPARTEMENTAL: "departement",
        Type.CLCT: "departement",
        Type.FINANCEURS: "region",
    }
    PERIMETRE_LABELS = {
        "beneficiaire": "un bénéficiaire",
        "departement": "un département",
        "region": "une région",
    }
    # One per territory: the convention's comité de projet, the département's CLCT.
    UNIQUES = {Type.COMITE_PROJET: "beneficiaire", Type.CLCT: "departement"}

    def clean(self) -> None:
        chosen = [f for f in ("beneficiaire", "departement", "region") if getattr(self, f"{f}_id")]
        if len(chosen) != 1:
            raise ValidationError(
                "Choisissez un seul périmètre : un bénéficiaire, un département ou une région."
            )
        attendu = self.PERIMETRES.get(self.type)
        if attendu and chosen[0] != attendu:
            raise ValidationError(
                f"Un {self.get_type_display().lower()} couvre {self.PERIMETRE_LABELS[attendu]}."
            )
        if self.type == self.Type.CLCT and self.reunions_par_an < REUNIONS_CLCT:
            raise ValidationError(
                {
                    "reunions_par_an": "Le comité local de cohésion territoriale se réunit au "
                    "moins deux fois par an (CGCT L1232-2)."
                }
            )
        field = self.UNIQUES.get(self.type)
        if field and chosen[0] == field:
            same = Instance.objects.filter(
                type=self.type, **{f"{field}_id": getattr(self, f"{field}_id")}
            )
            if same.exclude(pk=self.pk).exists():
                raise ValidationError(
                    f"Ce territoire a déjà son {self.get_type_display().lower()}."
                )

    def delete_if_never_met(self) -> None:
        """An instance set up by mistake goes, with its planned or cancelled meetings; one that
        has met stays (its decisions and relevés are the record of the money it moved)."""
        with transaction.atomic():
            Instance.objects.select_for_update().filter(pk=self.pk).first()
            if self.reunions.filter(
                Q(statut=Reunion.Statut.TENUE) | Q(decisions__isnull=False)
            ).exists():
                raise ValidationError(
                    "Cette instance s'est déjà réunie : elle reste, avec ses décisions et ses "
                    "relevés. Modifiez-la plutôt."
                )
            self.delete()

    def prochaine_echeance(self) -> date:
        derniere = self.reunions.filter(statut=Reunion.Statut.TENUE).aggregate(d=Max("date"))[
            "d"
        ] or timezone.localdate(self.created_at)
        return derniere + relativedelta(months=12 // self.reunions_par_an)


def nom_par_defaut(type_: str, perimetre) -> str:
    """« Comité de projet d'Ussel »; a département's or région's name has no article in the
    data (« de l'Indre », « du Cher »): « Comité local de cohésion territoriale – Indre (36) »,
    as gouvernance/seed.py names them."""
    label = dict(Instance.Type.choices)[type_]
    if isinstance(perimetre, Beneficiaire):
        return f"{label} {de(perimetre.nom)}"
    if isinstance(perimetre, Departement):
        return f"{label} – {perimetre.nom} ({perimetre.code})"
    return f"{label} – {perimetre.nom}"


class Membre(models.Model):
    class Role(models.TextChoices):
        PRESIDENT = "president", "Président"
        COPRESIDENT = "copresident", "Co-président"
        MEMBRE = "membre", "Membre"
        INVITE = "invite", "Invité"
        EN_PRESENCE = "en_presence", "En présence de"

    instance = models.ForeignKey(
        Instance, verbose_name="instance", on_delete=models.CASCADE, related_name="membres"
    )
    organisation = models.CharField("organisation", max_length=200, validators=[texte_une_ligne])
    personne = models.CharField(
        "personne", max_length=200, blank=True, validators=[texte_une_ligne]
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="compte sur le portail",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="membres_instances",
    )
    email = models.EmailField(
        "courriel", blank=True, help_text="Pour la convocation (à défaut, celui du compte)."
    )
    role = models.CharField("rôle", max_length=20, choices=Role.choices, default=Role.MEMBRE)

    class Meta:
        verbose_name = "membre"
        ordering = ["instance", "role", "organisation", "pk"]

    def __str__(self) -> str:
        return f"{self.organisation} – {self.personne}" if self.personne else self.organisation

    @property
    def adresse(self) -> str:
        return self.email or (self.user.email if self.user_id else "")


class ReunionQuerySet(models.QuerySet):
    def for_user(self, user) -> "ReunionQuerySet":
        return self.filter(instance__in=Instance.objects.for_user(user))

    def releve_attendu(self, today: date) -> "ReunionQuerySet":
        """Held more than ``DELAI_RELEVE`` ago and its relevé de décisions not published."""
        publie = Releve.objects.filter(reunion=OuterRef("pk"), statut=Releve.Statut.PRET)
        return self.filter(statut=Reunion.Statut.TENUE, date__lte=today - DELAI_RELEVE).exclude(
            Exists(publie)
        )


class Reunion(models.Model):
    class Statut(models.TextChoices):
        PREVUE = "prevue", "Prévue"
        TENUE = "tenue", "Tenue"
        ANNULEE = "annulee", "Annulée"

    instance = models.ForeignKey(
        Instance, verbose_name="instance", on_delete=models.CASCADE, related_name="reunions"
    )
    date = models.DateField("date", validators=[date_plausible])
    heure_debut = models.TimeField("heure de début", default="14:00")
    heure_fin = models.TimeField("heure de fin", default="16:00")
    lieu = models.CharField("lieu", max_length=200, blank=True, validators=[texte_une_ligne])
    lien_visio = models.URLField("lien de visioconférence", blank=True)
    statut = models.CharField(
        "statut", max_length=20, choices=Statut.choices, default=Statut.PREVUE
    )
    convoquee_le = models.DateTimeField("convocation envoyée le", null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="créée par",
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )

    objects = ReunionQuerySet.as_manager()

    class Meta:
        verbose_name = "réunion"
        ordering = ["instance", "-date", "-heure_debut"]
        constraints = [
            models.CheckConstraint(
                condition=Q(heure_fin__gt=F("heure_debut")), name="reunion_ends_after_it_starts"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instance} du {self.date:%d/%m/%Y}"

    def clean(self) -> None:
        if not self.lieu and not self.lien_visio:
            raise ValidationError("Indiquez un lieu ou un lien de visioconférence.")
        if self.statut == self.Statut.TENUE and self.date and self.date > timezone.localdate():
            raise ValidationError(
                {"date": "Cette réunion est tenue : sa date ne peut pas être dans le futur."}
            )
        if self.heure_debut and self.heure_fin and self.heure_fin <= self.heure_debut:
            raise ValidationError({"heure_fin": "La réunion doit finir après son début."})

    def change_statut(self, statut: str) -> None:
        """Held: on or before today only."""
        if statut == self.Statut.TENUE and self.date > timezone.localdate():
            raise ValidationError("Une réunion à venir ne peut pas être déclarée tenue.")
        self.statut = statut
        self.save(update_fields=["statut"])

    def mark_convoked(self) -> None:
        self.convoquee_le = timezone.now()
        self.save(update_fields=["convoquee_le"])

    def lock_decisions(self) -> None:
        """Inside a transaction: lock the meeting (the relevé's publication waits for it) and
        refuse once its relevé de décisions is published or being published: decisions are
        then frozen, as the relevé shows them."""
        Reunion.objects.select_for_update().filter(pk=self.pk).first()
        if self.releves.filter(statut__in=[Releve.Statut.EN_COURS, Releve.Statut.PRET]).exists():
            raise ValidationError(DECISIONS_FIGEES)

    def releve_publie(self) -> "Releve | None":
        return self.releves.filter(statut=Releve.Statut.PRET).order_by("-requested_at").first()


class PointOrdreDuJour(models.Model):
    reunion = models.ForeignKey(
        Reunion, verbose_name="réunion", on_delete=models.CASCADE, related_name="points"
    )
    ordre = models.PositiveSmallIntegerField(
        "ordre", default=1, validators=[MinValueValidator(1), MaxValueValidator(99)]
    )
    intitule = models.CharField("intitulé", max_length=300, validators=[texte_une_ligne])
    fiche = models.ForeignKey(
        "actions.FicheAction",
        verbose_name="fiche action",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="points_gouvernance",
    )
    convention = models.ForeignKey(
        "conventions.Convention",
        verbose_name="convention",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="points_gouvernance",
    )

    class Meta:
        verbose_name = "point de l'ordre du jour"
        verbose_name_plural = "ordre du jour"
        ordering = ["reunion", "ordre", "pk"]

    def __str__(self) -> str:
        return f"{self.ordre}. {self.intitule}"

    def move(self, step: int) -> bool:
        """One place up (-1) or down (+1): the agenda is numbered 1…n again, in one
        transaction, the meeting locked. False at either end."""
        with transaction.atomic():
            Reunion.objects.select_for_update().filter(pk=self.reunion_id).first()
            points = list(PointOrdreDuJour.objects.filter(reunion_id=self.reunion_id))
            index = next((i for i, p in enumerate(points) if p.pk == self.pk), None)
            other = -1 if index is None else index + step
            if not 0 <= other < len(points):
                return False
            points[index], points[other] = points[other], points[index]
            for ordre, point in enumerate(points, start=1):
                if point.ordre != ordre:
                    point.ordre = ordre
                    point.save(update_fields=["ordre"])
        return True


class Presence(models.Model):
    class Statut(models.TextChoices):
        PRESENT = "present", "Présent"
        EXCUSE = "excuse", "Excusé"
        REPRESENTE = "represente", "Représenté"

    reunion = models.ForeignKey(
        Reunion, verbose_name="réunion", on_delete=models.CASCADE, related_name="presences"
    )
    membre = models.ForeignKey(
        Membre, verbose_name="membre", on_delete=models.CASCADE, related_name="presences"
    )
    statut = models.CharField("présence", max_length=20, choices=Statut.choices)
    represente_par = models.CharField(
        "représenté par", max_length=200, blank=True, validators=[texte_une_ligne]
    )

    class Meta:
        verbose_name = "présence"
        ordering = ["reunion", "membre"]
        constraints = [
            models.UniqueConstraint(fields=["reunion", "membre"], name="one_presence_per_member"),
        ]

    def __str__(self) -> str:
        return f"{self.membre} : {self.get_statut_display()}"


class Decision(models.Model):
    class Type(models.TextChoices):
        VALIDATION_PLAN = "validation_plan", "Validation du plan d'action"
        AVENANT = "avenant", "Avenant"
        PRIORISATION = "priorisation", "Priorisation"
        FINANCEMENT = "financement", "Financement"
        AUTRE = "autre", "Autre décision"

    reunion = models.ForeignKey(
        Reunion, verbose_name="réunion", on_delete=models.CASCADE, related_name="decisions"
    )
    type = models.CharField("type", max_length=30, choices=Type.choices)
    texte = models.TextField("décision", validators=TEXTE_LONG_VALIDATORS)
    fiches = models.ManyToManyField(
        "actions.FicheAction",
        verbose_name="fiches action",
        blank=True,
        related_name="decisions_gouvernance",
    )
    conventions = models.ManyToManyField(
        "conventions.Convention",
        verbose_name="conventions",
        blank=True,
        related_name="decisions_gouvernance",
    )
    # A financing line changed by the decision shows it on its fiche (« décidé en … »).
    lignes = models.ManyToManyField(
        "actions.LigneFinancement",
        verbose_name="lignes de financement",
        blank=True,
        related_name="decisions",
    )
    created_at = models.DateTimeField("enregistrée le", auto_now_add=True)

    class Meta:
        verbose_name = "décision"
        ordering = ["reunion", "pk"]

    def __str__(self) -> str:
        return f"{self.get_type_display()} – {self.reunion}"

    @property
    def origine(self) -> str:
        """« décidé en comité de projet du 12/03/2026 »"""
        type_ = self.reunion.instance.get_type_display()
        return f"décidé en {type_[0].lower()}{type_[1:]} du {self.reunion.date:%d/%m/%Y}"


class SuiteQuerySet(models.QuerySet):
    def for_user(self, user) -> "SuiteQuerySet":
        return self.filter(decision__reunion__in=Reunion.objects.for_user(user))

    def a_faire(self) -> "SuiteQuerySet":
        return self.filter(faite_le__isnull=True)

    def en_retard(self, today: date) -> "SuiteQuerySet":
        return self.a_faire().filter(echeance__lt=today)


class Suite(models.Model):
    """A follow-up of a decision (« suite à donner »): who, by when; done when marked so."""

    decision = models.ForeignKey(
        Decision, verbose_name="décision", on_delete=models.CASCADE, related_name="suites"
    )
    intitule = models.CharField("suite à donner", max_length=300, validators=[texte_une_ligne])
    responsable = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="responsable",
        on_delete=models.PROTECT,
        related_name="suites_gouvernance",
    )
    echeance = models.DateField("échéance", validators=[date_plausible])
    faite_le = models.DateField("faite le", null=True, blank=True)

    objects = SuiteQuerySet.as_manager()

    class Meta:
        verbose_name = "suite à donner"
        verbose_name_plural = "suites à donner"
        ordering = ["echeance", "pk"]

    def __str__(self) -> str:
        return self.intitule

    def mark_done(self) -> bool:
        """Once: a second click changes nothing. The reminders of this follow-up resolve on
        the save (rappels/signals.py)."""
        with transaction.atomic():
            suite = Suite.objects.select_for_update().get(pk=self.pk)
            if suite.faite_le is not None:
                return False
            self.faite_le = timezone.localdate()
            self.save(update_fields=["faite_le"])
        return True


def releve_upload_to(instance: "Releve", filename: str) -> str:
    return f"releves/{instance.reunion_id}/{filename}"


class ReleveQuerySet(JobQuerySet):
    def for_user(self, user) -> "ReleveQuerySet":
        return self.filter(reunion__in=Reunion.objects.for_user(user))


class Releve(Job):
    """The relevé de décisions of a meeting, published as a PDF (pvd/jobs.py); each one kept."""

    reunion = models.ForeignKey(
        Reunion, verbose_name="réunion", on_delete=models.CASCADE, related_name="releves"
    )
    fichier = models.FileField("fichier", upload_to=releve_upload_to, blank=True)

    objects = ReleveQuerySet.as_manager()

    TASK = "gouvernance.tasks.generate_releve"
    FAILED_AFTER_RETRIES = (
        "La publication du relevé de décisions a échoué après plusieurs tentatives ({error}). "
        "Relancez-la plus tard."
    )
    STALLED = "La publication du relevé de décisions n'a pas abouti (interrompue). Relancez-la."

    class Meta:
        verbose_name = "relevé de décisions"
        verbose_name_plural = "relevés de décisions"
        ordering = ["reunion", "-requested_at"]

    def __str__(self) -> str:
        return f"Relevé de décisions – {self.reunion}"

    def result_filename(self) -> str:
        return f"releve-{self.reunion_id}-{self.pk}.pdf"
