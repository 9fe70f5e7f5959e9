"""Posts of chefs de projet: recruitment states, the people in post, co-financing by year."""

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from communes.models import Beneficiaire, Commune
from pvd.bounds import (
    MONTANT,
    TEXTE_LONG,
    TEXTE_LONG_VALIDATORS,
    URL_MAX,
    date_plausible,
    taux_valide,
    texte_une_ligne,
)
from pvd.files import pdf_upload_name

MONEY = {"max_digits": 10, "decimal_places": 2}
# A contract, or a post's co-financing, ending within this horizon is announced: on the
# dashboards, in the posts list and by the reminders (rappels/regles.py), from the same day.
HORIZON_FIN_CONTRAT = timedelta(days=90)
ALERTE_VACANCE = relativedelta(months=2)


class Financeur(models.TextChoices):
    """The co-funders of the post (docs/domaine.md §5); the collectivité pays the rest."""

    ANCT = "anct", "ANCT"
    BANQUE_DES_TERRITOIRES = "bdt", "Banque des Territoires"
    ETAT = "etat", "État (FNADT)"
    ANAH = "anah", "Anah"


class PosteQuerySet(models.QuerySet):
    def for_user(self, user) -> "PosteQuerySet":
        if user.perimeter.sees_everything:
            return self
        visible = Beneficiaire.objects.for_user(user).filter(postes=OuterRef("pk"))
        return self.filter(Exists(visible))


def fiche_de_poste_upload_to(instance: "Poste", filename: str) -> str:
    return pdf_upload_name("postes/fiches")


class Poste(models.Model):
    class Etat(models.TextChoices):
        A_CREER = "a_creer", "À créer"
        EN_RECRUTEMENT = "en_recrutement", "En recrutement"
        POURVU = "pourvu", "Pourvu"
        VACANT = "vacant", "Vacant"

    class TypeContrat(models.TextChoices):
        CONTRAT_DE_PROJET = "contrat_projet", "Contrat de projet"
        CDD = "cdd", "CDD"
        TITULAIRE = "titulaire", "Titulaire"
        DETACHEMENT = "detachement", "Détachement"
        AUTRE = "autre", "Autre"

    beneficiaires = models.ManyToManyField(
        Beneficiaire,
        verbose_name="bénéficiaires PVD",
        related_name="postes",
        help_text="Un poste peut être partagé entre bénéficiaires d'un même EPCI.",
    )
    communes = models.ManyToManyField(
        Commune, verbose_name="communes couvertes", related_name="postes_chef_de_projet"
    )
    intitule = models.CharField(
        "intitulé", max_length=200, default="Chef de projet PVD", validators=[texte_une_ligne]
    )
    employeur_siren = models.CharField(
        "SIREN de l'employeur",
        max_length=9,
        validators=[RegexValidator(r"^\d{9}$", "Le SIREN compte 9 chiffres.")],
        help_text="La commune ou l'EPCI qui emploie le chef de projet.",
    )
    employeur_nom = models.CharField("employeur", max_length=200, validators=[texte_une_ligne])
    type_contrat = models.CharField(
        "type de contrat",
        max_length=20,
        choices=TypeContrat.choices,
        default=TypeContrat.CONTRAT_DE_PROJET,
    )
    etp = models.DecimalField(
        "temps de travail (ETP)",
        max_digits=3,
        decimal_places=2,
        default=Decimal("1"),
        validators=[
            MinValueValidator(Decimal("0.1"), "Le temps de travail va de 0,1 à 1 ETP."),
            MaxValueValidator(Decimal("1"), "Le temps de travail va de 0,1 à 1 ETP."),
        ],
    )
    date_creation = models.DateField(
        "date de création du poste",
        validators=[date_plausible],
        help_text="Délibération ou décision de l'employeur ; pas de cofinancement avant cette "
        "année.",
    )
    etat = models.CharField(
        "état du recrutement", max_length=20, choices=Etat.choices, default=Etat.A_CREER
    )
    fiche_de_poste = models.FileField(
        "fiche de poste (PDF)", upload_to=fiche_de_poste_upload_to, blank=True
    )
    date_publication = models.DateField(
        "date de publication de l'offre", null=True, blank=True, validators=[date_plausible]
    )
    lien_offre = models.URLField("lien vers l'offre publiée", blank=True, max_length=URL_MAX)
    vacant_depuis = models.DateField(
        "vacant depuis", null=True, blank=True, validators=[date_plausible]
    )
    motif_vacance = models.CharField(
        "motif de la vacance", max_length=250, blank=True, validators=[texte_une_ligne]
    )
    created_at = models.DateTimeField("créé le", auto_now_add=True)
    updated_at = models.DateTimeField("modifié le", auto_now=True)

    objects = PosteQuerySet.as_manager()

    # Nobody in post and somebody expected: the reminders (rappels/regles.py: poste_vacant)
    # speak of such a post once it has waited ALERTE_VACANCE.
    ETATS_A_POURVOIR = (Etat.VACANT, Etat.EN_RECRUTEMENT)

    # Recorded by hand: « pourvu » comes with an occupation, see Occupation.
    TRANSITIONS = {
        Etat.A_CREER: (Etat.EN_RECRUTEMENT,),
        Etat.EN_RECRUTEMENT: (Etat.A_CREER,),
        Etat.POURVU: (),
        Etat.VACANT: (Etat.EN_RECRUTEMENT,),
    }

    class Meta:
        verbose_name = "poste de chef de projet"
        verbose_name_plural = "postes de chef de projet"
        ordering = ["employeur_nom", "intitule", "pk"]

    def __str__(self) -> str:
        return f"{self.intitule} – {self.employeur_nom}"

    @property
    def departement_codes(self) -> set[str]:
        return {b.departement_id for b in self.beneficiaires.all()}

    def allowed_transitions(self) -> tuple[str, ...]:
        return self.TRANSITIONS[self.Etat(self.etat)]

    def change_etat(self, nouveau: str, *, by, date_effet: date, commentaire: str = "", **fields):
        """Record a state change in the history and apply it with its facts."""
        ancien = self.etat
        for name, value in fields.items():
            setattr(self, name, value)
        self.etat = nouveau
        if nouveau == self.Etat.VACANT:
            self.vacant_depuis = self.vacant_depuis or date_effet
        elif nouveau == self.Etat.POURVU:
            self.vacant_depuis = None
            self.motif_vacance = ""
        with transaction.atomic():
            self.save(
                update_fields=["etat", "vacant_depuis", "motif_vacance", "updated_at", *fields]
            )
            return ChangementEtat.objects.create(
                poste=self,
                ancien_etat=ancien,
                nouvel_etat=nouveau,
                date=date_effet,
                commentaire=commentaire,
                by=by,
            )

    def occupation_actuelle(self, today: date | None = None) -> "Occupation | None":
        today = today or timezone.localdate()
        return next((o for o in self.occupations.all() if o.is_actuelle(today)), None)


class ChangementEtat(models.Model):
    """The history of a post's recruitment states: when, who recorded it, why."""

    poste = models.ForeignKey(
        Poste, verbose_name="poste", on_delete=models.CASCADE, related_name="changements"
    )
    ancien_etat = models.CharField(
        "état précédent", max_length=20, choices=Poste.Etat.choices, blank=True
    )
    nouvel_etat = models.CharField("nouvel état", max_length=20, choices=Poste.Etat.choices)
    date = models.DateField("date", validators=[date_plausible])
    commentaire = models.TextField(
        "commentaire", blank=True, max_length=TEXTE_LONG, validators=TEXTE_LONG_VALIDATORS
    )
    by = models.ForeignKey(
        "pvd.User",
        verbose_name="enregistré par",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField("enregistré le", auto_now_add=True)

    class Meta:
        verbose_name = "changement d'état"
        verbose_name_plural = "changements d'état"
        ordering = ["-date", "-created_at"]

    def __str__(self) -> str:
        return f"{self.get_nouvel_etat_display()} le {self.date:%d/%m/%Y}"


def cofinancement_finissant(day: date) -> bool:
    """Whether the co-financing of ``day``'s year, which ends on 31 December, is announced."""
    return date(day.year, 12, 31) - day <= HORIZON_FIN_CONTRAT


def actuelle_q(day: date, prefix: str = "") -> Q:
    """An occupation in post on ``day`` (started, not left), on occupations reached through
    ``prefix`` (``"occupations__"`` from a post)."""
    return Q(**{f"{prefix}date_debut__lte": day}) & (
        Q(**{f"{prefix}date_fin__isnull": True}) | Q(**{f"{prefix}date_fin__gte": day})
    )


def contrat_finissant_q(day: date, prefix: str = "", horizon=None) -> Q:
    """In post on ``day``, no departure recorded, and the contract ends within
    ``HORIZON_FIN_CONTRAT``: what the dashboards count and the reminders announce.
    ``horizon``: ``day + HORIZON_FIN_CONTRAT`` when ``day`` is an expression (a prepared
    query's slot, postes/tableaux.py)."""
    return (
        actuelle_q(day, prefix)
        & Q(**{f"{prefix}date_fin__isnull": True})
        & Q(
            **{
                f"{prefix}date_fin_contrat__gte": day,
                f"{prefix}date_fin_contrat__lte": day + HORIZON_FIN_CONTRAT
                if horizon is None
                else horizon,
            }
        )
    )


class OccupationQuerySet(models.QuerySet):
    def actuelles(self, day: date) -> "OccupationQuerySet":
        return self.filter(actuelle_q(day))

    def contrats_finissants(self, day: date) -> "OccupationQuerySet":
        return self.filter(contrat_finissant_q(day))


class Occupation(models.Model):
    """A person in the post, from the day they start to the day they leave."""

    poste = models.ForeignKey(
        Poste, verbose_name="poste", on_delete=models.CASCADE, related_name="occupations"
    )
    prenom = models.CharField("prénom", max_length=100, validators=[texte_une_ligne])
    nom = models.CharField("nom", max_length=100, validators=[texte_une_ligne])
    email = models.EmailField("adresse électronique")
    telephone = models.CharField(
        "téléphone", max_length=30, blank=True, validators=[texte_une_ligne]
    )
    date_debut = models.DateField("date de prise de poste", validators=[date_plausible])
    date_fin_contrat = models.DateField(
        "fin du contrat prévue", null=True, blank=True, validators=[date_plausible]
    )
    date_fin = models.DateField(
        "date de départ", null=True, blank=True, validators=[date_plausible]
    )
    motif_fin = models.CharField(
        "motif du départ", max_length=250, blank=True, validators=[texte_une_ligne]
    )
    # The chef de projet role opened for this person; removed once they leave.
    role = models.ForeignKey(
        "pvd.Role",
        verbose_name="rôle sur le portail",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField("créée le", auto_now_add=True)

    objects = OccupationQuerySet.as_manager()

    class Meta:
        verbose_name = "occupation du poste"
        verbose_name_plural = "occupations du poste"
        ordering = ["-date_debut"]
        constraints = [
            models.CheckConstraint(
                condition=Q(date_fin__isnull=True) | Q(date_fin__gte=models.F("date_debut")),
                name="occupation_ends_after_start",
                violation_error_message="La date de départ précède la date de prise de poste.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.prenom} {self.nom}"

    @property
    def nom_complet(self) -> str:
        return f"{self.prenom} {self.nom}"

    def is_actuelle(self, day: date) -> bool:
        """``actuelle_q`` on a loaded occupation."""
        return self.date_debut <= day and (self.date_fin is None or self.date_fin >= day)

    def is_contrat_finissant(self, day: date) -> bool:
        """``contrat_finissant_q`` on a loaded occupation."""
        return (
            self.is_actuelle(day)
            and self.date_fin is None
            and self.date_fin_contrat is not None
            and day <= self.date_fin_contrat <= day + HORIZON_FIN_CONTRAT
        )

    def clean(self) -> None:
        if self.date_fin and self.date_debut and self.date_fin < self.date_debut:
            raise ValidationError(
                {"date_fin": "La date de départ précède la date de prise de poste."}
            )
        if self.poste_id and self.date_debut:
            if self.date_debut < self.poste.date_creation:
                raise ValidationError(
                    {
                        "date_debut": "Le poste a été créé le "
                        f"{self.poste.date_creation:%d/%m/%Y} : la prise de poste ne peut pas "
                        "être antérieure."
                    }
                )
            end = self.date_fin or date.max
            others = self.poste.occupations.exclude(pk=self.pk).filter(
                Q(date_fin__isnull=True) | Q(date_fin__gte=self.date_debut),
                date_debut__lte=end,
            )
            other = others.first()
            if other is not None:
                until = f"au {other.date_fin:%d/%m/%Y}" if other.date_fin else "sans date de départ"
                raise ValidationError(
                    f"Ces dates chevauchent l'occupation de {other.nom_complet} "
                    f"(du {other.date_debut:%d/%m/%Y} {until}) : un poste n'a qu'une personne "
                    "à la fois. Enregistrez d'abord son départ."
                )

    @property
    def mois_occupes(self) -> list[tuple[int, int]]:
        return months_between(self.date_debut, self.date_fin)


def months_between(start: date, end: date | None) -> list[tuple[int, int]]:
    """The (year, month) pairs that a period touches; an open period runs to year end."""
    end = end or date(start.year + 1, 12, 31)
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


class RegleCofinancementQuerySet(models.QuerySet):
    def en_vigueur(self, year: int) -> "RegleCofinancementQuerySet":
        return self.filter(
            Q(date_fin__isnull=True) | Q(date_fin__gte=date(year, 1, 1)),
            date_debut__lte=date(year, 12, 31),
        )


class RegleCofinancement(models.Model):
    """A rule of the programme, as published: a later rule is a new row, never an edit."""

    class Condition(models.TextChoices):
        TOUJOURS = "toujours", "Dans tous les cas"
        SANS_ANAH = "sans_anah", "Sans participation de l'Anah"
        AVEC_ANAH = "avec_anah", "Avec participation de l'Anah"

    libelle = models.CharField("libellé", max_length=200, validators=[texte_une_ligne])
    financeur = models.CharField(
        "financeur",
        max_length=10,
        choices=Financeur.choices,
        blank=True,
        help_text="Vide : la règle porte sur le total des cofinancements du poste.",
    )
    condition = models.CharField(
        "condition",
        max_length=20,
        choices=Condition.choices,
        default=Condition.TOUJOURS,
        help_text="Une année est « avec participation de l'Anah » quand la ligne Anah apporte "
        "au moins 10 % du coût chargé annuel (montant notifié, à défaut demandé) : une ligne "
        "Anah plus petite laisse l'année sous les règles « sans Anah ».",
    )
    date_debut = models.DateField("en vigueur à partir du", validators=[date_plausible])
    date_fin = models.DateField(
        "en vigueur jusqu'au", null=True, blank=True, validators=[date_plausible]
    )
    taux = models.DecimalField(
        "taux du coût chargé annuel (%)", max_digits=5, decimal_places=2, validators=[taux_valide]
    )
    plafond_annuel = models.DecimalField("plafond annuel (€)", validators=MONTANT, **MONEY)
    source = models.TextField(
        "source",
        help_text="Texte ou page qui publie la règle.",
        max_length=TEXTE_LONG,
        validators=TEXTE_LONG_VALIDATORS,
    )
    created_at = models.DateTimeField("créée le", auto_now_add=True)

    objects = RegleCofinancementQuerySet.as_manager()

    # Fields that may not change once amounts were notified under the rule.
    FIGEE = ("financeur", "condition", "date_debut", "taux", "plafond_annuel")

    class Meta:
        verbose_name = "règle de cofinancement"
        verbose_name_plural = "règles de cofinancement"
        ordering = ["-date_debut", "financeur", "condition"]
        constraints = [
            models.CheckConstraint(
                condition=Q(date_fin__isnull=True) | Q(date_fin__gte=models.F("date_debut")),
                name="regle_ends_after_start",
                violation_error_message="La fin de validité précède son début.",
            )
        ]

    def __str__(self) -> str:
        return self.libelle

    def applies_in(self, year: int, month: int) -> bool:
        first = date(year, month, 1)
        return self.date_debut <= first and (self.date_fin is None or self.date_fin >= first)

    def matches(self, avec_anah: bool) -> bool:
        if self.condition == self.Condition.TOUJOURS:
            return True
        return (self.condition == self.Condition.AVEC_ANAH) == avec_anah

    def lignes_notifiees(self) -> "models.QuerySet[LigneCofinancement]":
        end_year = self.date_fin.year if self.date_fin else 9999
        lignes = LigneCofinancement.objects.filter(
            montant_notifie__gt=0,
            annee__annee__gte=self.date_debut.year,
            annee__annee__lte=end_year,
        )
        if self.financeur:
            lignes = lignes.filter(financeur=self.financeur)
        return lignes


class CofinancementAnneeQuerySet(models.QuerySet):
    def for_user(self, user) -> "CofinancementAnneeQuerySet":
        return self.filter(poste__in=Poste.objects.for_user(user))


class CofinancementAnnee(models.Model):
    """One year of co-financing of a post: one application for all funders."""

    poste = models.ForeignKey(
        Poste, verbose_name="poste", on_delete=models.CASCADE, related_name="annees"
    )
    annee = models.PositiveSmallIntegerField(
        "année", validators=[MinValueValidator(2020), MaxValueValidator(2040)]
    )
    cout_charge = models.DecimalField(
        "coût chargé annuel éligible (€)",
        validators=MONTANT,
        help_text="Salaire et charges sur une année pleine.",
        **MONEY,
    )
    reference_dossier = models.CharField(
        "numéro du dossier démarches-simplifiées",
        max_length=30,
        blank=True,
        validators=[texte_une_ligne],
    )
    date_demande = models.DateField(
        "date de la demande", null=True, blank=True, validators=[date_plausible]
    )
    created_at = models.DateTimeField("créée le", auto_now_add=True)
    updated_at = models.DateTimeField("modifiée le", auto_now=True)

    objects = CofinancementAnneeQuerySet.as_manager()

    class Meta:
        verbose_name = "cofinancement annuel"
        verbose_name_plural = "cofinancements annuels"
        ordering = ["poste", "-annee"]
        constraints = [
            models.UniqueConstraint(
                fields=["poste", "annee"],
                name="one_cofinancement_per_poste_and_year",
                violation_error_message="Ce poste a déjà un cofinancement pour cette année.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.poste} – {self.annee}"


class LigneCofinancement(models.Model):
    """One funder's part of a year: requested, notified and paid."""

    annee = models.ForeignKey(
        CofinancementAnnee,
        verbose_name="année",
        on_delete=models.CASCADE,
        related_name="lignes",
    )
    financeur = models.CharField("financeur", max_length=10, choices=Financeur.choices)
    montant_demande = models.DecimalField(
        "montant demandé (€)", default=0, validators=MONTANT, **MONEY
    )
    montant_notifie = models.DecimalField(
        "montant notifié (€)", default=0, validators=MONTANT, **MONEY
    )
    date_notification = models.DateField(
        "date de notification", null=True, blank=True, validators=[date_plausible]
    )
    montant_verse = models.DecimalField("montant versé (€)", default=0, validators=MONTANT, **MONEY)
    date_versement = models.DateField(
        "date du dernier versement", null=True, blank=True, validators=[date_plausible]
    )

    class Meta:
        verbose_name = "ligne de cofinancement"
        verbose_name_plural = "lignes de cofinancement"
        ordering = ["annee", "financeur"]
        constraints = [
            models.UniqueConstraint(
                fields=["annee", "financeur"],
                name="one_line_per_funder_and_year",
                violation_error_message="Ce financeur figure déjà pour cette année.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_financeur_display()} {self.annee.annee}"

    @property
    def reste_a_verser(self) -> Decimal:
        """See postes/financement.py: never negative, an overrun is shown apart."""
        from .financement import reste_a_verser

        return reste_a_verser(self.montant_notifie, self.montant_verse)

    @property
    def trop_verse(self) -> Decimal:
        from .financement import trop_verse

        return trop_verse(self.montant_notifie, self.montant_verse)


# The « avec Anah » ceilings apply when the Anah really co-finances the year: its line brings
# at least this share of the loaded annual cost (notified, else requested). A token Anah line
# (0,01 €) leaves the year under the « sans Anah » ceilings.
PART_ANAH_MINIMALE = Decimal("0.10")


def avec_anah(cout: Decimal, lignes: Iterable[LigneCofinancement]) -> bool:
    """Whether a year is « avec Anah » (``PART_ANAH_MINIMALE``): this chooses between the
    « avec Anah » and « sans Anah » rules of the ceiling (postes/plafonds.py). ``lignes``: a
    year's lines, stored or built from a form."""
    for ligne in lignes:
        if ligne.financeur == Financeur.ANAH:
            montant = ligne.montant_notifie or ligne.montant_demande or Decimal(0)
            return montant > 0 and montant >= (cout or 0) * PART_ANAH_MINIMALE
    return False
