from datetime import date
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.db import connections, models
from django.db.models import Q, Sum
from django.utils import timezone

from communes.models import Beneficiaire, Commune
from pvd import policy
from pvd.bounds import (
    MONTANT,
    TEXTE_LONG,
    TEXTE_LONG_VALIDATORS,
    date_plausible,
    nombre_plafonne,
    siret_valide,
    texte_une_ligne,
)
from pvd.files import pdf_upload_name
from pvd.french import euros
from pvd.jobs import Job, JobQuerySet

from .plan_cache import new_plan_version

AXES_ORT = [
    "Habitat",
    "Développement économique et commercial",
    "Mobilité et connexions",
    "Formes urbaines, espaces publics et patrimoine",
    "Équipements et services publics",
]
AXE_TRANSVERSAL = "Transition écologique"

# The catalogue of funders is seeded by migration 0002 and managed afterwards.


class Financeur(models.Model):
    """The managed catalogue of funders."""

    nom = models.CharField("nom", max_length=100, unique=True, validators=[texte_une_ligne])
    description = models.CharField(
        "description", max_length=200, blank=True, validators=[texte_une_ligne]
    )
    ordre = models.PositiveSmallIntegerField("ordre", default=0)
    actif = models.BooleanField("proposé dans les formulaires", default=True)
    # The same funder in the posts' co-financing lines (postes.models.Financeur): what a
    # partner pointing at this funder reads there (pvd/policy.py: visible_funders).
    code_poste = models.CharField(
        "code dans les cofinancements de postes",
        max_length=10,
        blank=True,
        help_text="anct, bdt, etat ou anah ; vide si ce financeur ne cofinance pas les postes.",
    )
    # The attributor's id in the SCDL « subventions » open-data file (opendata/): a line of a
    # funder without it is left out of the file, and counted as such on /opendata/.
    siret = models.CharField(
        "SIRET",
        max_length=14,
        blank=True,
        validators=[siret_valide],
        help_text="14 chiffres, tel que l'annuaire des entreprises le donne ; publié comme "
        "attribuant dans le fichier des subventions (données ouvertes).",
    )

    class Meta:
        verbose_name = "financeur"
        ordering = ["ordre", "nom"]
        constraints = [
            models.UniqueConstraint(
                fields=["code_poste"],
                condition=~Q(code_poste=""),
                name="one_catalogue_funder_per_post_funder",
            )
        ]

    def __str__(self) -> str:
        return self.nom


class Axe(models.Model):
    beneficiaire = models.ForeignKey(
        Beneficiaire, verbose_name="bénéficiaire", on_delete=models.CASCADE, related_name="axes"
    )
    numero = models.PositiveSmallIntegerField("numéro")
    nom = models.CharField("nom", max_length=200, validators=[texte_une_ligne])
    transversal = models.BooleanField("axe transversal", default=False)

    class Meta:
        verbose_name = "axe"
        ordering = ["beneficiaire", "numero"]
        constraints = [
            models.UniqueConstraint(fields=["beneficiaire", "numero"], name="axe_number_unique")
        ]

    def __str__(self) -> str:
        return f"{self.numero}. {self.nom}"


def default_axes(beneficiaire: Beneficiaire) -> list["Axe"]:
    """The five usual ORT axes and the transversal one, not saved."""
    return [
        Axe(beneficiaire=beneficiaire, numero=i, nom=nom) for i, nom in enumerate(AXES_ORT, 1)
    ] + [
        Axe(
            beneficiaire=beneficiaire,
            numero=len(AXES_ORT) + 1,
            nom=AXE_TRANSVERSAL,
            transversal=True,
        )
    ]


def ensure_axes(beneficiaire: Beneficiaire) -> None:
    """Seed a plan with the usual axes (``default_axes``) when it starts: its first write."""
    if beneficiaire.axes.exists():
        return
    Axe.objects.bulk_create(default_axes(beneficiaire), ignore_conflicts=True)
    new_plan_version(beneficiaire.pk)  # bulk_create sends no signal


# A plan none of whose fiches changed for this long is « sans mise à jour »: the chef de
# projet's dashboard lists its fiches, the reminders (rappels/regles.py) send a reminder.
SANS_MISE_A_JOUR = relativedelta(months=3)


def abandonnee_q(prefix: str = "") -> Q:
    """An abandoned fiche, on fiches reached through ``prefix`` (``"fiches__"`` from a
    beneficiary, ``"fiche__"`` from a financing line)."""
    return Q(**{f"{prefix}maturite": FicheAction.Maturite.ABANDONNEE})


def finie_q(prefix: str = "") -> Q:
    """A fiche with nothing left to do: delivered, abandoned, or its works achieved."""
    maturite, avancement = FicheAction.Maturite, FicheAction.Avancement
    return Q(**{f"{prefix}maturite__in": (maturite.LIVREE, maturite.ABANDONNEE)}) | Q(
        **{f"{prefix}avancement": avancement.ACHEVEE}
    )


def en_retard_q(day: date, prefix: str = "") -> Q:
    """Planned to end before ``day`` and not finished (``finie_q``)."""
    return Q(**{f"{prefix}date_fin_prevue__lt": day}) & ~finie_q(prefix)


def livree_q(prefix: str = "") -> Q:
    """Delivered: the « livrée » bucket of actions/plan.py (maturity livrée or works achieved)."""
    return Q(**{f"{prefix}maturite": FicheAction.Maturite.LIVREE}) | (
        Q(**{f"{prefix}avancement": FicheAction.Avancement.ACHEVEE}) & ~abandonnee_q(prefix)
    )


def sans_fin_q(prefix: str = "") -> Q:
    """Not finished and its planned end unknown: whether it is late cannot be said, so the
    figures count it beside « en retard »."""
    return Q(**{f"{prefix}date_fin_prevue__isnull": True}) & ~finie_q(prefix)


class FicheActionQuerySet(models.QuerySet):
    def for_user(self, user) -> "FicheActionQuerySet":
        return self.filter(beneficiaire__in=Beneficiaire.objects.for_user(user))

    def finies(self) -> "FicheActionQuerySet":
        return self.filter(finie_q())

    def en_retard(self, day: date | None = None) -> "FicheActionQuerySet":
        """Planned to end before ``day`` (today), not finished."""
        return self.filter(en_retard_q(day or timezone.localdate()))

    def club_for(self, user) -> "FicheActionQuerySet":
        """What the Club shows ``user`` across all towns (pvd/policy.py: ``may_read_club``):
        the fiches shared with the Club, and within the user's perimeter every fiche. The one
        place the Club's read rule is applied."""
        if not policy.may_read_club(user):
            return self.none()
        if policy.sees_everything(user):
            return self
        perimetre = Beneficiaire.objects.for_user(user).values("pk")
        if connections[self.db].vendor == "postgresql":
            # = ANY(ARRAY(subquery)): an InitPlan run once. PostgreSQL costs IN (subquery)
            # as if it ran again for each row an index scan probes (26,000 each), and read
            # all 82,500 fiches rather than the 16 towns of a département (220 ms → 0.3 ms).
            dans_le_perimetre = models.Func(
                models.F("beneficiaire_id"),
                models.Subquery(perimetre),
                arg_joiner=" = ANY(ARRAY",
                template="%(expressions)s)",
                output_field=models.BooleanField(),
            )
            return self.filter(Q(partage_club=True) | Q(dans_le_perimetre))
        return self.filter(Q(partage_club=True) | Q(beneficiaire__in=perimetre))

    def with_financement(self) -> "FicheActionQuerySet":
        return self.annotate(
            finance=models.functions.Coalesce(
                Sum("financements__montant"), Decimal("0"), output_field=models.DecimalField()
            )
        )


class FicheAction(models.Model):
    class MaitreOuvrage(models.TextChoices):
        COMMUNE = "commune", "Commune"
        EPCI = "epci", "EPCI"
        SEM = "sem", "SEM / SPL"
        BAILLEUR = "bailleur", "Bailleur social"
        ETAT = "etat", "État ou établissement public"
        PRIVE = "prive", "Privé"
        AUTRE = "autre", "Autre"

    class Maturite(models.TextChoices):
        IDEE = "idee", "Idée"
        MATURATION = "maturation", "En maturation"
        PRETE = "prete", "Prête"
        ENGAGEE = "engagee", "Engagée"
        LIVREE = "livree", "Livrée"
        ABANDONNEE = "abandonnee", "Abandonnée"

    class Avancement(models.TextChoices):
        NON_COMMENCEE = "non_commencee", "Non commencée"
        ETUDE = "etude", "Étude"
        DEMARRAGE = "demarrage", "Démarrage"
        OPERATIONNELLE = "operationnelle", "Opérationnelle"
        ACHEVEE = "achevee", "Achevée"

    class Priorite(models.TextChoices):
        HAUTE = "1", "Haute"
        MOYENNE = "2", "Moyenne"
        BASSE = "3", "Basse"

    class Nature(models.TextChoices):
        INVESTISSEMENT = "investissement", "Investissement"
        FONCTIONNEMENT = "fonctionnement", "Fonctionnement"

    beneficiaire = models.ForeignKey(
        Beneficiaire, verbose_name="bénéficiaire", on_delete=models.CASCADE, related_name="fiches"
    )
    reference = models.CharField(
        "référence", max_length=20, help_text="Par exemple : 2.3", validators=[texte_une_ligne]
    )
    titre = models.CharField("titre", max_length=300, validators=[texte_une_ligne])
    axe = models.ForeignKey(
        Axe, verbose_name="axe", on_delete=models.PROTECT, related_name="fiches"
    )
    description = models.TextField(
        "description", blank=True, max_length=TEXTE_LONG, validators=TEXTE_LONG_VALIDATORS
    )
    objectifs = models.TextField(
        "objectifs", blank=True, max_length=TEXTE_LONG, validators=TEXTE_LONG_VALIDATORS
    )
    communes = models.ManyToManyField(Commune, verbose_name="communes concernées", blank=True)
    secteur = models.CharField(
        "secteur d'intervention", max_length=200, blank=True, validators=[texte_une_ligne]
    )
    maitre_ouvrage_type = models.CharField(
        "type de maître d'ouvrage", max_length=20, choices=MaitreOuvrage.choices, blank=True
    )
    maitre_ouvrage = models.CharField(
        "maître d'ouvrage", max_length=200, blank=True, validators=[texte_une_ligne]
    )
    partenaires = models.CharField(
        "partenaires", max_length=500, blank=True, validators=[texte_une_ligne]
    )
    referent = models.CharField(
        "référent", max_length=200, blank=True, validators=[texte_une_ligne]
    )
    date_debut_prevue = models.DateField(
        "début prévu", null=True, blank=True, validators=[date_plausible]
    )
    date_fin_prevue = models.DateField(
        "fin prévue", null=True, blank=True, validators=[date_plausible]
    )
    date_debut_reelle = models.DateField(
        "début réel", null=True, blank=True, validators=[date_plausible]
    )
    date_fin_reelle = models.DateField(
        "fin réelle", null=True, blank=True, validators=[date_plausible]
    )
    jalons = models.TextField(
        "jalons",
        blank=True,
        help_text="Étude, consultation, travaux, livraison…",
        max_length=TEXTE_LONG,
        validators=TEXTE_LONG_VALIDATORS,
    )
    maturite = models.CharField(
        "maturité", max_length=20, choices=Maturite.choices, default=Maturite.IDEE
    )
    avancement = models.CharField(
        "avancement", max_length=20, choices=Avancement.choices, default=Avancement.NON_COMMENCEE
    )
    priorite = models.CharField(
        "priorité", max_length=1, choices=Priorite.choices, default=Priorite.MOYENNE
    )
    budget_vert = models.BooleanField(
        "budget vert", default=False, help_text="Action favorable à l'environnement."
    )
    cout_total = models.DecimalField(
        "coût total (€ HT)",
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=MONTANT,
    )
    nature = models.CharField(
        "nature de la dépense",
        max_length=20,
        choices=Nature.choices,
        default=Nature.INVESTISSEMENT,
    )
    partage_club = models.BooleanField(
        "partagée avec le Club",
        default=True,
        help_text="Décochée, la fiche est « non partagée avec le Club » : les autres villes "
        "du programme ne la voient pas dans la recherche du Club.",
    )
    version = models.PositiveIntegerField("version", default=1, editable=False)
    updated_by = models.ForeignKey(
        "pvd.User",
        verbose_name="modifiée par",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField("créée le", auto_now_add=True)
    updated_at = models.DateTimeField("modifiée le", auto_now=True)

    objects = FicheActionQuerySet.as_manager()

    class Meta:
        verbose_name = "fiche action"
        verbose_name_plural = "fiches action"
        ordering = ["beneficiaire", "axe__numero", "reference"]
        constraints = [
            models.UniqueConstraint(
                fields=["beneficiaire", "reference"],
                name="fiche_reference_unique",
                violation_error_message="Une fiche de ce plan porte déjà cette référence.",
            ),
        ]
        indexes = [models.Index(fields=["beneficiaire", "axe"])]

    def __str__(self) -> str:
        return f"{self.reference} – {self.titre}"

    def can_edit(self, user) -> bool:
        return policy.may_edit_plan(user, self.beneficiaire)

    def clean(self) -> None:
        errors = {}
        if (
            self.axe_id
            and self.beneficiaire_id
            and self.axe.beneficiaire_id != self.beneficiaire_id
        ):
            errors["axe"] = "Cet axe appartient au plan d'un autre bénéficiaire."
        for debut, fin in (
            ("date_debut_prevue", "date_fin_prevue"),
            ("date_debut_reelle", "date_fin_reelle"),
        ):
            if (
                getattr(self, debut)
                and getattr(self, fin)
                and getattr(self, fin) < getattr(self, debut)
            ):
                errors[fin] = "La fin ne peut pas précéder le début."
        if errors:
            raise ValidationError(errors)

    def refus_depassement(self, finance: Decimal | None = None) -> str:
        """The refusal of a fiche whose stored financing lines add up to more than its cost:
        the rule of the web form and of the Excel import alike, checked after they write.
        ``finance``: the lines' total when already summed (``with_financement``)."""
        if self.cout_total is None:
            return ""
        if finance is None:
            finance = self.financements.aggregate(total=Sum("montant"))["total"] or Decimal("0")
        if finance <= self.cout_total:
            return ""
        return (
            f"Le plan de financement ({euros(finance)}) dépasse le coût total "
            f"({euros(self.cout_total)}) : réduisez un financement ou corrigez le coût."
        )

    @property
    def is_finie(self) -> bool:
        """``finie_q`` on a loaded fiche."""
        return (
            self.maturite in (self.Maturite.LIVREE, self.Maturite.ABANDONNEE)
            or self.avancement == self.Avancement.ACHEVEE
        )

    def is_en_retard(self, day: date) -> bool:
        """``en_retard_q`` on a loaded fiche."""
        return bool(self.date_fin_prevue and self.date_fin_prevue < day and not self.is_finie)

    @property
    def en_retard(self) -> bool:
        return self.is_en_retard(timezone.localdate())


class LigneFinancement(models.Model):
    class Statut(models.TextChoices):
        PREVU = "prevu", "Prévu"
        SOLLICITE = "sollicite", "Sollicité"
        NOTIFIE = "notifie", "Notifié"
        VERSE = "verse", "Versé"

    fiche = models.ForeignKey(
        FicheAction, verbose_name="fiche", on_delete=models.CASCADE, related_name="financements"
    )
    financeur = models.ForeignKey(Financeur, verbose_name="financeur", on_delete=models.PROTECT)
    dispositif = models.CharField(
        "dispositif",
        max_length=200,
        blank=True,
        help_text="Par exemple : DSIL 2024.",
        validators=[texte_une_ligne],
    )
    montant = models.DecimalField(
        "montant (€)", max_digits=14, decimal_places=2, validators=MONTANT
    )
    statut = models.CharField("statut", max_length=20, choices=Statut.choices, default=Statut.PREVU)
    date_decision = models.DateField(
        "date de la décision", null=True, blank=True, validators=[date_plausible]
    )

    class Meta:
        verbose_name = "ligne de financement"
        verbose_name_plural = "plan de financement"
        ordering = ["fiche", "financeur__ordre", "pk"]

    def __str__(self) -> str:
        return f"{self.financeur} : {euros(self.montant)}, fiche {self.fiche.reference}"


class Indicateur(models.Model):
    class Frequence(models.TextChoices):
        MENSUELLE = "mensuelle", "Mensuelle"
        TRIMESTRIELLE = "trimestrielle", "Trimestrielle"
        SEMESTRIELLE = "semestrielle", "Semestrielle"
        ANNUELLE = "annuelle", "Annuelle"

    class Type(models.TextChoices):
        REALISATION = "realisation", "Réalisation"
        RESULTAT = "resultat", "Résultat"

    fiche = models.ForeignKey(
        FicheAction, verbose_name="fiche", on_delete=models.CASCADE, related_name="indicateurs"
    )
    type = models.CharField("type", max_length=20, choices=Type.choices)
    libelle = models.CharField("indicateur", max_length=300, validators=[texte_une_ligne])
    unite = models.CharField(
        "unité",
        max_length=50,
        help_text="Par exemple : logements, m², %",
        validators=[texte_une_ligne],
    )
    cible = models.DecimalField(
        "cible",
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[nombre_plafonne],
    )
    frequence = models.CharField(
        "fréquence de mesure",
        max_length=20,
        choices=Frequence.choices,
        blank=True,
        help_text="Le chef de projet reçoit un rappel quand une mesure est attendue ; "
        "vide : pas de rappel.",
    )
    created_at = models.DateTimeField("créé le", auto_now_add=True)

    class Meta:
        verbose_name = "indicateur"
        ordering = ["fiche", "type", "pk"]

    def __str__(self) -> str:
        return self.libelle

    @property
    def prochaine_mesure(self) -> date | None:
        """When the next measure is due (the first due date after the last measure), if any."""
        if not self.frequence or self.fiche.maturite == FicheAction.Maturite.ABANDONNEE:
            return None
        if "derniere_date" in self.__dict__:  # read with the indicator (the fiche's page)
            derniere = self.derniere_date
        else:
            derniere = max((m.date for m in self.mesures.all()), default=None)
        debut = self.fiche.date_debut_reelle or self.fiche.date_debut_prevue
        base = mesure_base(derniere, debut, timezone.localtime(self.created_at).date())
        return base + relativedelta(months=MOIS_PAR_FREQUENCE[self.frequence])


# The months between two measures of an indicator, by its frequency (rappels/regles.py).
MOIS_PAR_FREQUENCE = {
    Indicateur.Frequence.MENSUELLE: 1,
    Indicateur.Frequence.TRIMESTRIELLE: 3,
    Indicateur.Frequence.SEMESTRIELLE: 6,
    Indicateur.Frequence.ANNUELLE: 12,
}


def mesure_base(derniere_mesure: date | None, debut_fiche: date | None, cree_le: date) -> date:
    """The date an indicator's measures are counted from: its last measure or, with none, the
    start of its action or its own creation, whichever is later (no reminder for a measure
    nobody could take yet). rappels/regles.py computes the same in SQL."""
    if derniere_mesure:
        return derniere_mesure
    return max(debut_fiche, cree_le) if debut_fiche else cree_le


class Mesure(models.Model):
    indicateur = models.ForeignKey(
        Indicateur, verbose_name="indicateur", on_delete=models.CASCADE, related_name="mesures"
    )
    date = models.DateField("date", validators=[date_plausible])
    valeur = models.DecimalField(
        "valeur", max_digits=14, decimal_places=2, validators=[nombre_plafonne]
    )

    class Meta:
        verbose_name = "mesure"
        ordering = ["indicateur", "-date"]

    def __str__(self) -> str:
        return f"{self.valeur} au {self.date:%d/%m/%Y}"


def piece_upload_to(instance: "PointAvancement", filename: str) -> str:
    return pdf_upload_name(f"actions/{instance.fiche_id}")


class PointAvancement(models.Model):
    """A dated entry of a fiche's progress journal."""

    fiche = models.ForeignKey(
        FicheAction, verbose_name="fiche", on_delete=models.CASCADE, related_name="points"
    )
    date = models.DateField("date", default=timezone.localdate, validators=[date_plausible])
    texte = models.TextField(
        "point d'avancement", max_length=TEXTE_LONG, validators=TEXTE_LONG_VALIDATORS
    )
    nouvel_avancement = models.CharField(
        "nouvel avancement", max_length=20, choices=FicheAction.Avancement.choices, blank=True
    )
    piece_jointe = models.FileField("pièce jointe (PDF)", upload_to=piece_upload_to, blank=True)
    auteur = models.ForeignKey(
        "pvd.User", verbose_name="auteur", on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField("enregistré le", auto_now_add=True)

    class Meta:
        verbose_name = "point d'avancement"
        verbose_name_plural = "points d'avancement"
        ordering = ["fiche", "-date", "-created_at"]

    def __str__(self) -> str:
        return f"{self.fiche.reference} – {self.date:%d/%m/%Y}"


class ExportPlanQuerySet(JobQuerySet):
    def for_user(self, user) -> "ExportPlanQuerySet":
        """The requester sees their exports; national staff see them all."""
        if policy.is_national(user):
            return self
        return self.filter(requested_by=user)


class ExportPlan(Job):
    """A workbook of fiches (France entière or one département) built by a Celery task."""

    class Perimetre(models.TextChoices):
        NATIONAL = "national", "France entière"
        DEPARTEMENT = "departement", "Département"

    perimetre = models.CharField("périmètre", max_length=20, choices=Perimetre.choices)
    departement = models.ForeignKey(
        "communes.Departement",
        verbose_name="département",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    lignes_faites = models.PositiveIntegerField("lignes écrites", default=0)
    lignes_total = models.PositiveIntegerField("lignes à écrire", default=0)
    fichier = models.FileField("fichier", upload_to="exports/actions/", blank=True)

    objects = ExportPlanQuerySet.as_manager()

    TASK = "actions.tasks.build_export_plan"
    FAILED_AFTER_RETRIES = (
        "L'export a échoué après plusieurs tentatives ({error}). Relancez-le plus tard."
    )
    STALLED = "L'export n'a pas abouti (interrompu). Relancez-le."

    class Meta:
        verbose_name = "export des fiches action"
        verbose_name_plural = "exports des fiches action"
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(perimetre="national", departement__isnull=True)
                | Q(perimetre="departement", departement__isnull=False),
                name="export_departement_matches_perimetre",
            )
        ]

    def __str__(self) -> str:
        return f"Export des fiches action – {self.libelle}"

    @property
    def libelle(self) -> str:
        if self.perimetre == self.Perimetre.DEPARTEMENT and self.departement_id:
            return str(self.departement)
        return "France entière"

    def result_filename(self) -> str:
        scope = f"departement-{self.departement_id}" if self.departement_id else "france"
        return f"fiches-action-{scope}-{self.requested_at:%Y-%m-%d}-{self.pk}.xlsx"

    @property
    def pourcentage(self) -> int:
        if not self.lignes_total:
            return 100 if self.statut == self.Statut.PRET else 0
        return min(100, self.lignes_faites * 100 // self.lignes_total)
