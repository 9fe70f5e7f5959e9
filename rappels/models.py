"""Reminders: one row per sending (rule, object, due date, recipient), unique in the database.

The row is created by the sweep (rappels/sweep.py) the first day its due date has come, and
never again: the unique constraint is what makes a reminder fire exactly once, however many
sweeps race. It is closed (``resolu_le``) once its situation is over (rappels/regles.py).
The row is also the in-app notification (``lue_le``) and remembers whether its e-mail went
out (``email_le``, after a claim with a lease: ``email_reserve_le``) or which digest
carried it.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Categorie(models.TextChoices):
    CONVENTIONS = "conventions", "Conventions et ORT"
    PLANS = "plans", "Plans d'action et fiches actions"
    POSTES = "postes", "Postes de chef de projet"
    GOUVERNANCE = "gouvernance", "Instances, réunions et suites à donner"


class Frequence(models.TextChoices):
    IMMEDIAT = "immediat", "Un courriel à chaque rappel"
    QUOTIDIEN = "quotidien", "Un récapitulatif quotidien"
    HEBDOMADAIRE = "hebdomadaire", "Un récapitulatif hebdomadaire (le lundi)"
    AUCUN = "aucun", "Aucun courriel (notifications sur le portail seulement)"


class RappelQuerySet(models.QuerySet):
    def for_user(self, user) -> "RappelQuerySet":
        """Each person reads their own notifications, nobody else's."""
        return self.filter(destinataire=user)

    def ouverts(self) -> "RappelQuerySet":
        """Reminders whose situation is not over (rappels/regles.py says when it is)."""
        return self.filter(resolu_le__isnull=True)

    def non_lus(self) -> "RappelQuerySet":
        return self.ouverts().filter(lue_le__isnull=True)


class Rappel(models.Model):
    regle = models.CharField("règle", max_length=50)
    categorie = models.CharField("catégorie", max_length=20, choices=Categorie.choices)
    objet = models.CharField("objet", max_length=60, help_text="Par exemple : convention:12.")
    echeance = models.DateField("échéance")
    destinataire = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="destinataire",
        on_delete=models.CASCADE,
        related_name="rappels",
        # The inbox index (destinataire, lue_le) serves every lookup by recipient.
        db_index=False,
    )
    # The territory it is about: a beneficiary, or (an instance of a département or a
    # région, CLCT…, whose reminders go to the préfecture) a département or a région.
    beneficiaire = models.ForeignKey(
        "communes.Beneficiaire",
        verbose_name="bénéficiaire PVD",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    departement = models.ForeignKey(
        "communes.Departement",
        verbose_name="département",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # a partial index (Meta): most reminders are a beneficiary's
    )
    region = models.ForeignKey(
        "communes.Region",
        verbose_name="région",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # a partial index (Meta): most reminders are a beneficiary's
    )
    message = models.CharField("message", max_length=300)
    lien = models.CharField("lien", max_length=200)
    created_at = models.DateTimeField("créé le", auto_now_add=True)
    lue_le = models.DateTimeField("lu le", null=True, blank=True)
    # Its situation is over (measure entered, convention signed, date moved…): it leaves the
    # notification centre and no e-mail carries it any more.
    resolu_le = models.DateTimeField("résolu le", null=True, blank=True)
    # The immediate e-mail: a worker claims it (``email_reserve_le``) for a lease, sends it,
    # then records ``email_le``. A claim whose worker died is taken again once the lease ends.
    email_reserve_le = models.DateTimeField("courriel réservé le", null=True, blank=True)
    email_le = models.DateTimeField("courriel envoyé le", null=True, blank=True)
    # A sending that failed on this row (a refused address, a header the mail library
    # refuses…): counted and kept, retried by the next sweeps up to ``sweep.MAX_ATTEMPTS``.
    email_echecs = models.PositiveSmallIntegerField("échecs d'envoi du courriel", default=0)
    email_erreur = models.CharField("dernière erreur d'envoi", max_length=300, blank=True)
    recapitulatif = models.ForeignKey(
        "Recapitulatif",
        verbose_name="récapitulatif",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="rappels",
        db_index=False,  # a partial index (Meta): set only once a digest takes it
    )

    objects = RappelQuerySet.as_manager()

    class Meta:
        verbose_name = "rappel"
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["regle", "objet", "echeance", "destinataire"],
                name="one_sending_per_rule_object_due_date_recipient",
            ),
            models.CheckConstraint(
                condition=(
                    Q(beneficiaire__isnull=False, departement__isnull=True, region__isnull=True)
                    | Q(beneficiaire__isnull=True, departement__isnull=False, region__isnull=True)
                    | Q(beneficiaire__isnull=True, departement__isnull=True, region__isnull=False)
                ),
                name="rappel_one_territory",
            ),
        ]
        # The sweep inserts thousands of reminders at once: only the indexes some read needs,
        # partial where the column is mostly empty (no entry for a NULL to write).
        indexes = [
            models.Index(fields=["destinataire", "lue_le"], name="rappel_inbox"),
            models.Index(
                fields=["departement"],
                condition=Q(departement__isnull=False),
                name="rappel_departement",
            ),
            models.Index(
                fields=["region"], condition=Q(region__isnull=False), name="rappel_region"
            ),
            models.Index(
                fields=["recapitulatif"],
                condition=Q(recapitulatif__isnull=False),
                name="rappel_recapitulatif",
            ),
        ]

    def __str__(self) -> str:
        return self.message

    @property
    def territoire_nom(self) -> str:
        """What e-mails group it under: the beneficiary's, département's or région's name."""
        return (self.beneficiaire or self.departement or self.region).nom


class Recapitulatif(models.Model):
    """One digest per user and period (« 2026-11-30 » or « 2026-S48 »), sent once."""

    destinataire = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="destinataire",
        on_delete=models.CASCADE,
        related_name="recapitulatifs",
    )
    periode = models.CharField("période", max_length=20)
    created_at = models.DateTimeField("créé le", auto_now_add=True)
    reserve_le = models.DateTimeField("réservé le", null=True, blank=True)
    envoye_le = models.DateTimeField("envoyé le", null=True, blank=True)
    echecs = models.PositiveSmallIntegerField("échecs d'envoi", default=0)
    erreur = models.CharField("dernière erreur d'envoi", max_length=300, blank=True)

    class Meta:
        verbose_name = "récapitulatif"
        constraints = [
            models.UniqueConstraint(
                fields=["destinataire", "periode"], name="one_digest_per_user_and_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.destinataire} – {self.periode}"


class Preference(models.Model):
    """How a person wants a category's reminders by e-mail; no row: the role's default."""

    utilisateur = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="utilisateur",
        on_delete=models.CASCADE,
        related_name="preferences_notification",
    )
    categorie = models.CharField("catégorie", max_length=20, choices=Categorie.choices)
    frequence = models.CharField("fréquence", max_length=20, choices=Frequence.choices)

    class Meta:
        verbose_name = "préférence de notification"
        constraints = [
            models.UniqueConstraint(
                fields=["utilisateur", "categorie"], name="one_preference_per_user_and_category"
            )
        ]

    def __str__(self) -> str:
        return f"{self.utilisateur} – {self.get_categorie_display()}"
