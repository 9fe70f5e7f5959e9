import hashlib
import hmac
import secrets

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from pvd.bounds import texte_une_ligne

PREFIXE = "pvd"  # every key reads « pvd_<prefix>_<secret> »


def empreinte(secret: str) -> str:
    """What is stored of a key: its SHA-256 (a key is 256 random bits, no salt needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class CleApiQuerySet(models.QuerySet):
    def actives(self) -> "CleApiQuerySet":
        return self.filter(revoquee_le__isnull=True)


class CleApi(models.Model):
    """An API key of a partner organisation: it acts as one user of the portal (its role and
    perimeter), is shown once at creation and stored hashed."""

    organisation = models.CharField(
        "organisme", max_length=150, validators=[texte_une_ligne], help_text="Par exemple : Anah."
    )
    user = models.ForeignKey(
        "pvd.User",
        verbose_name="agit en tant que",
        on_delete=models.PROTECT,
        related_name="cles_api",
        help_text="Le compte dont la clé lit les données : son rôle et son territoire.",
    )
    prefixe = models.CharField("préfixe", max_length=16, unique=True, editable=False)
    empreinte = models.CharField("empreinte", max_length=64, editable=False)
    created_by = models.ForeignKey(
        "pvd.User",
        verbose_name="créée par",
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField("créée le", auto_now_add=True)
    revoquee_le = models.DateTimeField("révoquée le", null=True, blank=True, editable=False)
    derniere_utilisation = models.DateTimeField(
        "dernière utilisation", null=True, blank=True, editable=False
    )

    objects = CleApiQuerySet.as_manager()

    class Meta:
        verbose_name = "clé d'API"
        verbose_name_plural = "clés d'API"
        ordering = ["revoquee_le", "organisation", "-created_at"]

    def __str__(self) -> str:
        return f"{self.organisation} ({PREFIXE}_{self.prefixe}_…)"

    @classmethod
    def emettre(cls, *, organisation: str, user, by) -> tuple["CleApi", str]:
        """Create a key; its full text is returned once and never stored."""
        prefixe = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        cle = cls.objects.create(
            organisation=organisation,
            user=user,
            prefixe=prefixe,
            empreinte=empreinte(secret),
            created_by=by,
        )
        return cle, f"{PREFIXE}_{prefixe}_{secret}"

    @classmethod
    def lire(cls, texte: str) -> "CleApi | None":
        """The key this text is, revoked or not; None when it is none."""
        parts = texte.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIXE:
            return None
        cle = cls.objects.select_related("user").filter(prefixe=parts[1]).first()
        if cle is None or not hmac.compare_digest(cle.empreinte, empreinte(parts[2])):
            return None
        return cle

    def revoquer(self) -> bool:
        """Revoke once: a key already revoked keeps its date."""
        done = CleApi.objects.filter(pk=self.pk, revoquee_le__isnull=True).update(
            revoquee_le=timezone.now()
        )
        self.refresh_from_db(fields=["revoquee_le"])
        return bool(done)

    def enregistrer_utilisation(self, methode: str, chemin: str) -> None:
        with transaction.atomic():
            UtilisationCle.objects.create(cle=self, methode=methode[:10], chemin=chemin[:300])
            CleApi.objects.filter(pk=self.pk).update(derniere_utilisation=timezone.now())


class UtilisationCle(models.Model):
    """Each request made with a key: the audit trail of partners' systems."""

    cle = models.ForeignKey(
        CleApi, verbose_name="clé", on_delete=models.CASCADE, related_name="utilisations"
    )
    methode = models.CharField("méthode", max_length=10)
    chemin = models.CharField("chemin", max_length=300)
    le = models.DateTimeField("le", auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "utilisation d'une clé d'API"
        verbose_name_plural = "utilisations des clés d'API"
        ordering = ["-le"]

    def __str__(self) -> str:
        return f"{self.cle} {self.methode} {self.chemin}"


class EnvoiFiche(models.Model):
    """Where a fiche stands with the national projects hub (api/hub.py): changed since its
    last successful send, or not."""

    fiche = models.OneToOneField(
        "actions.FicheAction",
        verbose_name="fiche",
        on_delete=models.CASCADE,
        related_name="envoi_hub",
    )
    a_envoyer = models.BooleanField("à envoyer", default=True, db_index=True)
    marquee_le = models.DateTimeField("modifiée le", default=timezone.now)
    envoyee_le = models.DateTimeField("envoyée le", null=True, blank=True)
    tentatives = models.PositiveSmallIntegerField("tentatives échouées", default=0)
    erreur = models.CharField("dernière erreur", max_length=300, blank=True)

    class Meta:
        verbose_name = "envoi d'une fiche à la plateforme des projets"
        verbose_name_plural = "envois des fiches à la plateforme des projets"

    def __str__(self) -> str:
        return f"Envoi de la fiche {self.fiche_id}"

    @classmethod
    def marquer(cls, fiche_ids) -> None:
        """These fiches changed: send them again at the next push."""
        ids = list(fiche_ids)
        existing = set(cls.objects.filter(fiche_id__in=ids).values_list("fiche_id", flat=True))
        cls.objects.filter(fiche_id__in=existing).update(a_envoyer=True, marquee_le=timezone.now())
        cls.objects.bulk_create(
            [cls(fiche_id=pk) for pk in ids if pk not in existing], ignore_conflicts=True
        )

    def echec(self, message: str) -> None:
        EnvoiFiche.objects.filter(pk=self.pk).update(
            tentatives=F("tentatives") + 1, erreur=message[:300]
        )
