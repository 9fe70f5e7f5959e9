import hashlib
import uuid
from collections import defaultdict
from functools import cache as once
from functools import cached_property
from pathlib import Path

from django.apps import apps
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Cast

from .bounds import texte_une_ligne
from .jobs import Job
from .perimeter import EMPTY, Perimeter


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("L'adresse électronique est obligatoire.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person of the programme, who logs in with their e-mail address."""

    username = None
    email = models.EmailField("adresse électronique", unique=True)
    # A new value whenever what the user's perimeter reads changes (pvd/signals.py): the
    # cached perimeter is keyed on it. Loaded with the request's user, so free to check.
    perimeter_version = models.UUIDField(default=uuid.uuid4, editable=False)
    # Listed in the Club's annuaire (club/): empty means the default of the role, listed
    # for a chef de projet, not for others; the person changes it on « Mon profil Club ».
    annuaire_club = models.BooleanField(
        "figurer dans l'annuaire du Club",
        null=True,
        blank=True,
        help_text="Les autres membres du programme voient votre nom et votre ville et peuvent "
        "vous écrire par le portail ; votre adresse électronique n'est jamais affichée.",
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        verbose_name = "utilisateur"
        ordering = ["last_name", "first_name", "email"]

    def __str__(self) -> str:
        full_name = self.get_full_name()
        return f"{full_name} <{self.email}>" if full_name else self.email

    def save(self, *args, **kwargs) -> None:
        # An account saved from an object loaded before a role change must not write the old
        # perimeter version back: only touch_perimeters() writes it.
        if (
            not self._state.adding
            and kwargs.get("update_fields") is None
            and not kwargs.get("force_insert")
        ):
            deferred = self.get_deferred_fields()  # as Django does: only what was loaded
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name != "perimeter_version" and f.attname not in deferred
            ]
        super().save(*args, **kwargs)

    @cached_property
    def perimeter(self) -> Perimeter:
        """Once per request (the request's user object), from the cache when the roles have
        not changed since it was computed, else in one query."""
        if not self.is_active:
            return EMPTY
        key = self._perimeter_cache_key()
        perimeter = cache.get(key)
        if perimeter is None:
            perimeter = self.compute_perimeter()
            cache.set(key, perimeter, PERIMETER_CACHE_TIMEOUT)
        return perimeter

    def _perimeter_cache_key(self) -> str:
        return f"perimeter:{perimeter_code_version()}:{self.pk}:{self.perimeter_version}"

    def prefetch(self, *keys: str) -> dict:
        """These cache entries, read in the same round trip as the perimeter when this
        request has not read it yet (the header's unread count): one Redis call, not two.
        The perimeter found is kept for the request; a missing one is computed on first use."""
        wanted = list(keys)
        perimeter_key = None
        if "perimeter" not in self.__dict__ and self.is_active:
            perimeter_key = self._perimeter_cache_key()
            wanted.append(perimeter_key)
        found = cache.get_many(wanted) if wanted else {}
        if perimeter_key is not None:
            cached = found.pop(perimeter_key, None)
            if cached is not None:
                self.__dict__["perimeter"] = cached
        return found

    def compute_perimeter(self) -> Perimeter:
        kinds: dict[int, str] = {}
        territories: dict[str, set[tuple[int, str]]] = defaultdict(set)
        for role_id, kind, what, code in territory_rows(self):
            kinds[role_id] = kind
            if code is not None:
                territories[what].add((role_id, code))
        if not kinds:
            return EMPTY

        def codes(what: str, kind: str | None = None) -> frozenset[str]:
            return frozenset(c for r, c in territories[what] if kind in (None, kinds[r]))

        with_area = {r for what in ("region", "departement") for r, _ in territories[what]}
        return Perimeter(
            national=Role.Kind.NATIONAL in kinds.values(),
            readonly_nation=any(
                kind == Role.Kind.PARTENAIRE and r not in with_area for r, kind in kinds.items()
            ),
            region_codes=codes("region"),
            departement_codes=codes("departement"),
            epci_sirens=codes("epci"),
            commune_codes=codes("commune"),
            prefecture_departement_codes=codes("departement", Role.Kind.PREFECTURE),
            beneficiaire_ids=frozenset(int(c) for c in codes("beneficiaire")),
        )


PERIMETER_CACHE_TIMEOUT = 24 * 3600


@once
def perimeter_code_version() -> str:
    """A digest of the code that computes a perimeter: a deployment that changes it never
    reads a perimeter cached by the previous release."""
    digest = hashlib.sha256()
    for name in ("models.py", "perimeter.py"):
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:12]


def touch_perimeters(user_ids, *loaded: User) -> None:
    """These users' perimeters changed: a new version, in the transaction of the change, so
    that no request reads the new version before the change is committed. ``loaded``: user
    objects at hand (a role's user), which forget the perimeter they computed."""
    user_ids = {pk for pk in user_ids if pk is not None}
    if not user_ids:
        return
    version = uuid.uuid4()
    User.objects.filter(pk__in=user_ids).update(perimeter_version=version)
    for user in loaded:
        user.perimeter_version = version
        user.__dict__.pop("perimeter", None)


def territory_rows(user: User) -> models.QuerySet:
    """(role id, role kind, what, code) for every territory of the user's roles, the active
    communes of their beneficiaries included: the whole perimeter in one UNION query."""

    def rows(queryset, role: str, what: str, code: str | None):
        return (
            queryset.order_by()
            .annotate(
                r=F(role),
                k=F("kind") if role == "pk" else F(f"{role}__kind"),
                w=Value(what),
                c=Cast(code, models.CharField()) if code else Value(None, models.CharField()),
            )
            .values_list("r", "k", "w", "c")
        )

    roles = Role.objects.filter(user=user)
    links = [
        (Role.departements.through, "departement", "departement_id"),
        (Role.communes.through, "commune", "commune_id"),
        (Role.beneficiaires.through, "beneficiaire", "beneficiaire_id"),
    ]
    # The kernel imports no feature app: the membership model is looked up by its label.
    membres = apps.get_model("communes", "MembreBeneficiaire").objects.filter(
        actif=True, beneficiaire__roles__user=user
    )
    return rows(roles, "pk", "role", None).union(
        rows(roles.filter(region__isnull=False), "pk", "region", "region_id"),
        rows(roles.filter(epci__isnull=False), "pk", "epci", "epci_id"),
        *(rows(t.objects.filter(role__user=user), "role", what, c) for t, what, c in links),
        rows(membres, "beneficiaire__roles", "commune", "commune_id"),
        all=True,
    )


class Role(models.Model):
    """A user's role in the programme and the territory it covers."""

    class Kind(models.TextChoices):
        NATIONAL = "national", "Équipe nationale (ANCT)"
        PREFECTURE = "prefecture", "Préfecture"
        CHEF_PROJET = "chef_projet", "Chef de projet"
        ELU = "elu", "Élu"
        PARTENAIRE = "partenaire", "Partenaire"

    user = models.ForeignKey(
        User, verbose_name="utilisateur", on_delete=models.CASCADE, related_name="roles"
    )
    kind = models.CharField("rôle", max_length=20, choices=Kind.choices)
    fonction = models.CharField(
        "fonction",
        max_length=150,
        blank=True,
        help_text="Par exemple : Maire, Sous-préfète.",
        validators=[texte_une_ligne],
    )
    organisation = models.CharField(
        "organisme",
        max_length=150,
        blank=True,
        help_text="Pour un partenaire : Banque des Territoires, Anah, Cerema…",
        validators=[texte_une_ligne],
    )
    region = models.ForeignKey(
        "communes.Region",
        verbose_name="région",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    departements = models.ManyToManyField(
        "communes.Departement", verbose_name="départements", blank=True, related_name="+"
    )
    epci = models.ForeignKey(
        "communes.EPCI",
        verbose_name="EPCI",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    communes = models.ManyToManyField(
        "communes.Commune", verbose_name="communes", blank=True, related_name="+"
    )
    beneficiaires = models.ManyToManyField(
        "communes.Beneficiaire",
        verbose_name="bénéficiaires PVD",
        blank=True,
        related_name="roles",
    )
    financeurs = models.ManyToManyField(
        "actions.Financeur",
        verbose_name="financeurs représentés",
        blank=True,
        related_name="partenaires",
        help_text="Pour un partenaire : les financeurs du catalogue dont il suit l'argent "
        "(tableaux de bord, cofinancements des postes).",
    )
    created_at = models.DateTimeField("créé le", auto_now_add=True)

    class Meta:
        verbose_name = "rôle"
        ordering = ["user", "kind"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} – {self.perimeter_label}"

    @property
    def perimeter_label(self) -> str:
        if self.kind == self.Kind.NATIONAL:
            return "France entière"
        parts: list[str] = []
        if self.region_id:
            parts.append(str(self.region))
        if self.pk:
            parts += [str(d) for d in self.departements.all()]
        if self.epci_id:
            parts.append(str(self.epci))
        if self.pk:
            parts += [b.nom for b in self.beneficiaires.all()]
            parts += [c.nom for c in self.communes.all()]
        return ", ".join(parts) or "France entière"

    def validate_perimeter(self, region, departements, epci, communes, beneficiaires=()) -> None:
        """Check that the perimeter fits the role (called by the role form)."""
        kind = self.kind
        errors = []
        territorial = region or departements or epci or communes
        if kind == self.Kind.NATIONAL and (territorial or beneficiaires):
            errors.append("L'équipe nationale voit tout le territoire : pas de périmètre.")
        if kind == self.Kind.PREFECTURE and (
            not departements or region or epci or communes or beneficiaires
        ):
            errors.append("Une préfecture couvre un ou plusieurs départements, et seulement eux.")
        if kind == self.Kind.CHEF_PROJET and (
            not (communes or beneficiaires) or region or departements or epci
        ):
            errors.append(
                "Un chef de projet travaille pour un ou plusieurs bénéficiaires PVD "
                "(ou des communes), et seulement eux."
            )
        if kind == self.Kind.ELU:
            if (
                region
                or departements
                or beneficiaires
                or (bool(epci) == bool(communes))
                or len(communes) > 1
            ):
                errors.append("Un élu représente une commune ou un EPCI (l'un des deux).")
        if kind == self.Kind.PARTENAIRE:
            if epci or communes or beneficiaires or (region and departements):
                errors.append(
                    "Un partenaire lit la France entière, une région ou des départements."
                )
            if not self.organisation:
                errors.append("Indiquez l'organisme du partenaire.")
        if errors:
            raise ValidationError(errors)


class ImportRun(models.Model):
    """One run of a reference-data importer: what it read and what it changed."""

    kind = models.CharField("import", max_length=50)
    files = models.TextField("fichiers")
    started_at = models.DateTimeField("lancé le", auto_now_add=True)
    created = models.PositiveIntegerField("créés", default=0)
    updated = models.PositiveIntegerField("mis à jour", default=0)
    unchanged = models.PositiveIntegerField("inchangés", default=0)
    skipped = models.PositiveIntegerField("ignorés", default=0)
    report = models.TextField("compte rendu", blank=True)

    class Meta:
        verbose_name = "import de données"
        verbose_name_plural = "imports de données"
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.kind} du {self.started_at:%d/%m/%Y %H:%M}"


class Heartbeat(models.Model):
    """The last success of a periodic task, written by the task itself (pvd.jobs.HeartbeatTask).

    The beat is alive while its most frequent task succeeds on time; reminders and digests
    show here whether they ran.
    """

    task = models.CharField("tâche", max_length=200, unique=True)
    last_success = models.DateTimeField("dernier succès", null=True, blank=True)
    period = models.DurationField("période attendue")
    # The last run that failed, and why (pvd.health.failure_cause): « SMTP », « base de
    # données »… so that « Santé du service » names the real cause.
    last_failure = models.DateTimeField("dernier échec", null=True, blank=True)
    failure_cause = models.CharField("cause du dernier échec", max_length=30, blank=True)
    failure_detail = models.CharField("détail du dernier échec", max_length=300, blank=True)

    class Meta:
        verbose_name = "tâche périodique"
        verbose_name_plural = "tâches périodiques"
        ordering = ["task"]

    def __str__(self) -> str:
        return self.task

    def is_late(self, now) -> bool:
        """Two periods without a success: a run was missed, not merely delayed."""
        return self.last_success is None or self.last_success < now - 2 * self.period

    @property
    def failing(self) -> bool:
        """Its last run failed (no success since)."""
        return self.last_failure is not None and (
            self.last_success is None or self.last_failure > self.last_success
        )


class Incident(models.Model):
    """A component of the service found failing (worker, beat, SMTP, a periodic task…),
    from the first time it was seen to its recovery: national staff are told once."""

    composant = models.CharField("composant", max_length=200)
    cause = models.CharField("cause", max_length=300)
    debut = models.DateTimeField("constaté le")
    fin = models.DateTimeField("rétabli le", null=True, blank=True)
    alerte_le = models.DateTimeField("alerte envoyée le", null=True, blank=True)

    class Meta:
        verbose_name = "incident"
        ordering = ["-debut"]
        constraints = [
            models.UniqueConstraint(
                fields=["composant"],
                condition=models.Q(fin__isnull=True),
                name="one_open_incident_per_component",
            )
        ]

    def __str__(self) -> str:
        return f"{self.composant} : {self.cause}"


class EnvoiFormulaire(models.Model):
    """A create form's one-time token, claimed by its first submission (pvd/integrity.py):
    a double click or a second tab finds it and is sent to what the first one created."""

    jeton = models.UUIDField("jeton", primary_key=True)
    user = models.ForeignKey(
        User, verbose_name="utilisateur", on_delete=models.CASCADE, related_name="+"
    )
    url = models.CharField("page de l'objet créé", max_length=500, blank=True)
    created_at = models.DateTimeField("envoyé le", auto_now_add=True)

    class Meta:
        verbose_name = "envoi de formulaire"
        verbose_name_plural = "envois de formulaires"

    def __str__(self) -> str:
        return f"Envoi du {self.created_at:%d/%m/%Y %H:%M}"


class CodeMfaUtilise(models.Model):
    """A TOTP code this account has used, kept while the code could still be accepted: its
    second use is refused by the database (unique), whether the cache answers or not."""

    user = models.ForeignKey(
        User, verbose_name="compte", on_delete=models.CASCADE, related_name="+"
    )
    code = models.CharField("code", max_length=20)
    expire_le = models.DateTimeField("expire le")

    class Meta:
        verbose_name = "code de double authentification utilisé"
        verbose_name_plural = "codes de double authentification utilisés"
        constraints = [
            models.UniqueConstraint(fields=["user", "code"], name="one_use_per_totp_code")
        ]

    def __str__(self) -> str:
        return f"{self.user} – {self.expire_le:%d/%m/%Y %H:%M}"


class EchecsMfa(models.Model):
    """Wrong second-factor codes of one account since ``depuis`` (pvd.mfa): at the limit,
    every code is refused until the window ends. One row per account, locked while a code
    is checked, so that parallel attempts count one by one."""

    user = models.OneToOneField(
        User, verbose_name="compte", on_delete=models.CASCADE, related_name="+"
    )
    echecs = models.PositiveSmallIntegerField("codes erronés", default=0)
    depuis = models.DateTimeField("depuis")

    class Meta:
        verbose_name = "codes erronés de double authentification"
        verbose_name_plural = "codes erronés de double authentification"

    def __str__(self) -> str:
        return f"{self.user} – {self.echecs}"


def deploiement_upload_to(instance: "Deploiement", filename: str) -> str:
    # Never the uploader's name; the extension tells the reader CSV from XLSX.
    extension = ".xlsx" if filename.lower().endswith(".xlsx") else ".csv"
    return f"deploiements/{uuid.uuid4().hex}{extension}"


class Deploiement(Job):
    """A spreadsheet of the programme's people (national rollout), kept as uploaded: a job
    simulates it, then, on confirmation, a second row pointing at that simulation applies it
    (portail/deploiement.py). ``rapport`` keeps the report."""

    class Mode(models.TextChoices):
        SIMULATION = "simulation", "Simulation"
        APPLICATION = "application", "Application"

    mode = models.CharField("mode", max_length=20, choices=Mode.choices, default=Mode.SIMULATION)
    source = models.FileField("tableau déposé", upload_to=deploiement_upload_to, blank=True)
    nom_fichier = models.CharField(
        "nom du fichier déposé", max_length=200, validators=[texte_une_ligne]
    )
    simulation = models.OneToOneField(
        "self",
        verbose_name="simulation confirmée",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="application",
    )
    rapport = models.TextField("compte rendu", blank=True)
    refuse = models.BooleanField("tableau refusé", default=False)
    fichier = models.FileField(
        "compte rendu (fichier)", upload_to="deploiements/rapports/", blank=True
    )

    TASK = "portail.tasks.deployer"
    FAILED_AFTER_RETRIES = (
        "Le déploiement a échoué après plusieurs tentatives ({error}). Relancez-le plus tard."
    )
    STALLED = "Le déploiement n'a pas abouti (interrompu). Relancez-le."

    class Meta:
        verbose_name = "déploiement"
        verbose_name_plural = "déploiements"
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"{self.get_mode_display()} de {self.nom_fichier}"

    def result_filename(self) -> str:
        return f"deploiement-{self.mode}-{self.pk}.txt"


class InvitationQuerySet(models.QuerySet):
    def a_envoyer(self, max_tentatives: int) -> "InvitationQuerySet":
        return self.filter(envoyee_le__isnull=True, tentatives__lt=max_tentatives)

    def activees(self) -> "InvitationQuerySet":
        """The person has chosen a password or logged in (ProConnect has no password)."""
        return self.filter(ACTIVEE)

    def non_activees(self) -> "InvitationQuerySet":
        return self.exclude(ACTIVEE)


# An unusable password (set_unusable_password) starts with « ! ».
ACTIVEE = Q(user__last_login__isnull=False) | ~Q(user__password__startswith="!")


class Invitation(models.Model):
    """The invitation of a person the national rollout brought in: sent once, by the
    invitations sweep (portail/deploiement.py), claimed with a conditional update."""

    user = models.OneToOneField(
        User, verbose_name="personne", on_delete=models.CASCADE, related_name="invitation"
    )
    deploiement = models.ForeignKey(
        Deploiement,
        verbose_name="déploiement",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="invitations",
    )
    created_at = models.DateTimeField("créée le", auto_now_add=True)
    envoyee_le = models.DateTimeField("invitation envoyée le", null=True, blank=True)
    envois = models.PositiveIntegerField("envois", default=0)
    tentatives = models.PositiveIntegerField("échecs d'envoi", default=0)
    erreur = models.CharField("dernière erreur", max_length=300, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        verbose_name = "invitation"
        ordering = ["user__last_name", "user__first_name", "user__email"]

    def __str__(self) -> str:
        return f"Invitation de {self.user.email}"


class CompteurLimite(models.Model):
    """One of allauth's rate-limit counters (wrong passwords, password resets…), held here
    rather than in Redis (pvd/ratelimits.py): a Redis outage never lifts a limit."""

    cle = models.CharField("clé", max_length=255, primary_key=True)
    # allauth's value: the times of the attempts counted (a list of seconds), or its lock.
    valeur = models.JSONField("valeur")
    expire_le = models.DateTimeField("expire le", db_index=True)

    class Meta:
        verbose_name = "compteur de limite de tentatives"
        verbose_name_plural = "compteurs de limites de tentatives"

    def __str__(self) -> str:
        return self.cle
