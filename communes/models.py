import unicodedata

from django.db import models
from django.db.models import Exists, OuterRef, Q


def normalize(text: str) -> str:
    """Lowercase, no accents, hyphens and apostrophes as spaces: how people type names."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    for sep in ("-", "'", "’", "  "):
        stripped = stripped.replace(sep, " ")
    return " ".join(stripped.split())


class RegionQuerySet(models.QuerySet):
    def for_user(self, user) -> "RegionQuerySet":
        perimeter = user.perimeter
        if perimeter.sees_everything:
            return self
        departements = Departement.objects.for_user(user).filter(region=OuterRef("pk"))
        return self.filter(Q(code__in=perimeter.region_codes) | Exists(departements))


class Region(models.Model):
    code = models.CharField("code INSEE", max_length=2, primary_key=True)
    nom = models.CharField("nom", max_length=100)
    siren = models.CharField("SIREN", max_length=9, blank=True)

    objects = RegionQuerySet.as_manager()

    class Meta:
        verbose_name = "région"
        ordering = ["nom"]

    def __str__(self) -> str:
        return self.nom


class DepartementQuerySet(models.QuerySet):
    def for_user(self, user) -> "DepartementQuerySet":
        perimeter = user.perimeter
        if perimeter.sees_everything:
            return self
        communes = Commune.objects.for_user(user).filter(departement=OuterRef("pk"))
        return self.filter(
            Q(code__in=perimeter.departement_codes)
            | Q(region_id__in=perimeter.region_codes)
            | Exists(communes)
        )


class Departement(models.Model):
    code = models.CharField("code INSEE", max_length=3, primary_key=True)
    nom = models.CharField("nom", max_length=100)
    region = models.ForeignKey(
        Region, verbose_name="région", on_delete=models.PROTECT, related_name="departements"
    )
    siren = models.CharField("SIREN", max_length=9, blank=True)

    objects = DepartementQuerySet.as_manager()

    class Meta:
        verbose_name = "département"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.nom} ({self.code})"


class EPCIQuerySet(models.QuerySet):
    def for_user(self, user) -> "EPCIQuerySet":
        perimeter = user.perimeter
        if perimeter.sees_everything:
            return self
        communes = Commune.objects.for_user(user).filter(epci=OuterRef("pk"))
        return self.filter(Q(siren__in=perimeter.epci_sirens) | Exists(communes))


class EPCI(models.Model):
    class Nature(models.TextChoices):
        CC = "CC", "Communauté de communes"
        CA = "CA", "Communauté d'agglomération"
        CU = "CU", "Communauté urbaine"
        METROPOLE = "METRO", "Métropole"

    siren = models.CharField("SIREN", max_length=9, primary_key=True)
    nom = models.CharField("nom", max_length=200)
    nature = models.CharField(
        "nature juridique",
        max_length=5,
        choices=Nature.choices,
        blank=True,
        help_text="Déduite du nom quand il l'indique (CC, CA, CU, Métropole).",
    )

    objects = EPCIQuerySet.as_manager()

    class Meta:
        verbose_name = "EPCI"
        verbose_name_plural = "EPCI"
        ordering = ["nom"]

    def __str__(self) -> str:
        return self.nom

    @staticmethod
    def nature_from_name(nom: str) -> str:
        first = nom.split(" ", 1)[0]
        if first in {"CC", "CA", "CU"}:
            return first
        lowered = nom.lower()
        if lowered.startswith("communauté de communes"):
            return EPCI.Nature.CC
        if lowered.startswith("communauté d'agglomération"):
            return EPCI.Nature.CA
        if lowered.startswith("communauté urbaine"):
            return EPCI.Nature.CU
        if "métropole" in lowered:
            return EPCI.Nature.METROPOLE
        return ""


class CommuneQuerySet(models.QuerySet):
    def for_user(self, user) -> "CommuneQuerySet":
        perimeter = user.perimeter
        if perimeter.sees_everything:
            return self
        return self.filter(perimeter.commune_q())

    def search(self, text: str) -> "CommuneQuerySet":
        text = text.strip()
        if not text:
            return self
        if text[:2].isdigit() or text[:2].upper() in {"2A", "2B"}:
            return self.filter(code__startswith=text.upper())
        return self.filter(nom_recherche__contains=normalize(text))


class Commune(models.Model):
    code = models.CharField("code INSEE", max_length=5, primary_key=True)
    nom = models.CharField("nom", max_length=200, help_text="Nom officiel avec son article.")
    nom_recherche = models.CharField(max_length=200, db_index=True, editable=False)
    departement = models.ForeignKey(
        Departement,
        verbose_name="département",
        on_delete=models.PROTECT,
        related_name="communes",
    )
    epci = models.ForeignKey(
        EPCI,
        verbose_name="EPCI",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="communes",
    )
    siren = models.CharField("SIREN", max_length=9, blank=True)
    population = models.PositiveIntegerField("population municipale", null=True, blank=True)

    objects = CommuneQuerySet.as_manager()

    class Meta:
        verbose_name = "commune"
        ordering = ["nom", "code"]
        indexes = [models.Index(fields=["departement", "nom"])]

    def __str__(self) -> str:
        return f"{self.nom} ({self.code})"

    def save(self, *args, **kwargs) -> None:
        self.nom_recherche = normalize(self.nom)
        if kwargs.get("update_fields") and "nom" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "nom_recherche"}
        super().save(*args, **kwargs)
