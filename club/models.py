from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from pvd.bounds import TEXTE_LONG, TEXTE_LONG_VALIDATORS, texte_une_ligne

# A sender writes at most this many messages through the Club in 24 hours (a spam brake,
# counted in the database so that it holds across processes and a cache outage).
MESSAGES_PAR_JOUR = 10


class MessageClubQuerySet(models.QuerySet):
    def recents(self, expediteur, now=None) -> "MessageClubQuerySet":
        """The sender's messages of the last 24 hours (the rate limit's window)."""
        since = (now or timezone.now()) - timedelta(days=1)
        return self.filter(expediteur=expediteur, envoye_le__gte=since)


class MessageClub(models.Model):
    """A message sent through the portal to a chef de projet listed in the Club's annuaire."""

    expediteur = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="expéditeur",
        on_delete=models.CASCADE,
        related_name="+",
    )
    destinataire = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="destinataire",
        on_delete=models.CASCADE,
        related_name="+",
    )
    fiche = models.ForeignKey(
        "actions.FicheAction",
        verbose_name="fiche action",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    objet = models.CharField("objet", max_length=200, validators=[texte_une_ligne])
    texte = models.TextField("message", max_length=TEXTE_LONG, validators=TEXTE_LONG_VALIDATORS)
    envoye_le = models.DateTimeField("envoyé le", default=timezone.now, db_index=True)

    objects = MessageClubQuerySet.as_manager()

    class Meta:
        verbose_name = "message du Club"
        verbose_name_plural = "messages du Club"
        ordering = ["-envoye_le"]

    def __str__(self) -> str:
        return self.objet
