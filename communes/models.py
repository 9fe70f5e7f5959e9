import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from pvd.bounds import (
    TEXTE_LONG,
    TEXTE_LONG_VALIDATORS,
    date_passee,
    date_plausible,
    texte_une_ligne,
)
from pvd.files import pdf_upload_name
from pvd.french import normalize
from pvd.jobs import Job

# The programme aims at communes below this population; a larger one needs a reason.
SEUIL_POPULATION = 20_000


class RegionQuerySet(models.QuerySet):
    def for_user(self, user) -> "RegionQuerySet":
        perimeter = user.perimeter
        if perimeter.sees_everything:
            return self
        departements = Departement.objects.for_user(user).filter(region=OuterRef("pk"))
        return self.filter(Q(code__in=perimeter.region_codes) | Exists(departements))


class Region(models.Model):
    code = models.CharField("code INSEE", max_length=2, primary_key=True)
    nom = models.CharField("nom", max_length=100, validators=[texte_une_ligne])
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

    def with_counts(self) -> "DepartementQuerySet":
        """Each département's communes, small communes (the programme's threshold) and EPCI."""
        return self.annotate(
            nb_communes=Count("communes", distinct=True),
            nb_petites=Count(
                "communes", filter=Q(communes__population__lt=SEUIL_POPULATION), distinct=True
            ),
            nb_epci=Count("communes__epci", distinct=True),
        )


class Departement(models.Model):
    code = models.CharField("code INSEE", max_length=3, primary_key=True)
    nom = models.CharField("nom", max_length=100, validators=[texte_une_ligne])
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
    nom = models.CharField("nom", max_length=200, validators=[texte_une_ligne])
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

    def with_active_membership(self) -> "CommuneQuerySet":
        """Each commune's current beneficiary, if any: its id, name and status."""

        def active(field: str) -> Subquery:
            membres = MembreBeneficiaire.objects.filter(commune=OuterRef("pk"), actif=True)
            return Subquery(membres.values(field)[:1])

        return self.annotate(
            beneficiaire_actif=active("beneficiaire_id"),
            beneficiaire_nom=active("beneficiaire__nom"),
            beneficiaire_statut=active("beneficiaire__statut"),
        )

    def search(self, text: str) -> "CommuneQuerySet":
        text = text.strip()
        if not text:
            return self
        if text[:2].isdigit() or text[:2].upper() in {"2A", "2B"}:
            return self.filter(code__startswith=text.upper())
        return self.filter(nom_recherche__contains=normalize(text))


class Commune(models.Model):
    code = models.CharField("code INSEE", max_length=5, primary_key=True)
    nom = models.CharField(
        "nom",
        max_length=200,
        help_text="Nom officiel avec son article.",
        validators=[texte_une_ligne],
    )
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
    # WGS 84, from the commune coordinates file (import_coordonnees): the centre of the
    # commune, or its town hall when the file gives no centre. Empty: not on the map.
    latitude = models.FloatField(
        "latitude",
        null=True,
        blank=True,
        validators=[
            MinValueValidator(-90, "Une latitude va de -90 à 90."),
            MaxValueValidator(90, "Une latitude va de -90 à 90."),
        ],
    )
    longitude = models.FloatField(
        "longitude",
        null=True,
        blank=True,
        validators=[
            MinValueValidator(-180, "Une longitude va de -180 à 180."),
            MaxValueValidator(180, "Une longitude va de -180 à 180."),
        ],
    )

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


class BeneficiaireQuerySet(models.QuerySet):
    def for_user(self, user) -> "BeneficiaireQuerySet":
        perimeter = user.perimeter
        if perimeter.sees_everything:
            return self
        membres = MembreBeneficiaire.objects.filter(beneficiaire=OuterRef("pk")).filter(
            perimeter.commune_q("commune")
        )
        return self.filter(Q(pk__in=perimeter.beneficiaire_ids) | Exists(membres))

    def actifs(self) -> "BeneficiaireQuerySet":
        return self.filter(statut__in=Beneficiaire.STATUTS_ACTIFS)

    def with_population(self) -> "BeneficiaireQuerySet":
        """``population_totale``: of its active member communes, or of all of them once it
        left the programme (its members were then made inactive). A correlated subquery:
        a page of 50 computes 50 sums, not one per beneficiary of the country."""
        counted = Q(actif=True) | ~Q(beneficiaire__statut__in=Beneficiaire.STATUTS_ACTIFS)
        population = (
            MembreBeneficiaire.objects.filter(counted, beneficiaire=OuterRef("pk"))
            .order_by()
            .values("beneficiaire")
            .annotate(total=Sum("commune__population"))
            .values("total")
        )
        return self.annotate(
            population_totale=Coalesce(
                Subquery(population, output_field=models.IntegerField()),
                0,
                output_field=models.IntegerField(),
            )
        )


class Beneficiaire(models.Model):
    """A PVD "dossier": one or more communes with their EPCI, which signs the conventions."""

    class Statut(models.TextChoices):
        CANDIDAT = "candidat", "Candidat"
        LAUREAT = "laureat", "Lauréat"
        NON_RETENU = "non_retenu", "Non retenu"
        RETIRE = "retire", "Retiré (sorti du programme)"

    STATUTS_ACTIFS = (Statut.CANDIDAT, Statut.LAUREAT)
    TRANSITIONS = {
        Statut.CANDIDAT: (Statut.LAUREAT, Statut.NON_RETENU, Statut.RETIRE),
        Statut.LAUREAT: (Statut.RETIRE,),
        Statut.NON_RETENU: (),
        Statut.RETIRE: (),
    }

    nom = models.CharField(
        "nom",
        max_length=250,
        help_text="Par exemple : Ussel – La Courtine.",
        validators=[texte_une_ligne],
    )
    epci = models.ForeignKey(
        EPCI,
        verbose_name="EPCI",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="beneficiaires",
    )
    departement = models.ForeignKey(
        Departement,
        verbose_name="département de référence",
        on_delete=models.PROTECT,
        related_name="beneficiaires",
    )
    statut = models.CharField(
        "statut", max_length=20, choices=Statut.choices, default=Statut.CANDIDAT
    )
    communes = models.ManyToManyField(
        Commune, through="MembreBeneficiaire", related_name="beneficiaires"
    )
    motif_epci_multiples = models.TextField(
        "motif (communes de plusieurs EPCI)",
        blank=True,
        help_text="Obligatoire quand les communes n'appartiennent pas au même EPCI.",
        max_length=TEXTE_LONG,
        validators=TEXTE_LONG_VALIDATORS,
    )
    justification_population = models.TextField(
        "justification (commune de 20 000 habitants ou plus)",
        blank=True,
        max_length=TEXTE_LONG,
        validators=TEXTE_LONG_VALIDATORS,
    )
    # The adhésion date entered by the préfecture where neither a signed convention
    # d'adhésion nor ANCT's list gives it (conventions/echeances.py reads them in that order).
    date_adhesion_saisie = models.DateField(
        "date d'adhésion (saisie)",
        null=True,
        blank=True,
        validators=[date_passee],
        help_text="Date de signature de la convention d'adhésion, quand le portail ne la "
        "connaît ni par la convention ni par la liste de l'ANCT.",
    )
    date_adhesion_saisie_par = models.ForeignKey(
        "pvd.User",
        verbose_name="date d'adhésion saisie par",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    date_adhesion_saisie_le = models.DateTimeField(
        "date d'adhésion saisie le", null=True, blank=True
    )
    created_at = models.DateTimeField("créé le", auto_now_add=True)
    updated_at = models.DateTimeField("modifié le", auto_now=True)

    objects = BeneficiaireQuerySet.as_manager()

    class Meta:
        verbose_name = "bénéficiaire PVD"
        verbose_name_plural = "bénéficiaires PVD"
        ordering = ["nom"]
        indexes = [
            models.Index(fields=["departement", "statut"]),
            # The list's page of 50 by name reads 50 rows, not every beneficiary sorted.
            models.Index(fields=["nom"], name="communes_beneficiaire_nom"),
        ]

    def __str__(self) -> str:
        return self.nom

    @property
    def is_active(self) -> bool:
        return self.statut in self.STATUTS_ACTIFS

    def allowed_transitions(self) -> tuple[str, ...]:
        return self.TRANSITIONS[self.Statut(self.statut)]

    def enregistrer_proposition(
        self, *, by, reference: str = "Proposition enregistrée sur le portail", date=None
    ) -> "DecisionStatut":
        """The first entry of the decision history: how the beneficiary came in, on the day
        it was proposed (today if not given)."""
        if date is not None:
            date_passee(date)

        return DecisionStatut.objects.create(
            beneficiaire=self,
            ancien_statut="",
            nouveau_statut=self.statut,
            decided_by=by,
            date_decision=date or timezone.localdate(),
            reference=reference,
        )

    def derniere_decision(self) -> "DecisionStatut | None":
        """The latest event of the history by its own date (then by recording order)."""
        return self.decisions.order_by("-date_decision", "-created_at").first()

    def decision_precedente_errors(self, date_decision) -> None:
        last = self.derniere_decision()
        if last and date_decision < last.date_decision:
            raise ValidationError(
                f"La décision ne peut pas précéder la précédente, du {last.date_decision:%d/%m/%Y}."
            )

    def change_statut(
        self,
        nouveau: str,
        *,
        by,
        date_decision,
        reference: str,
        motif: str = "",
        document=None,
    ) -> "DecisionStatut":
        """Record a decision and apply it; communes leave the programme with their dossier."""

        if nouveau not in self.allowed_transitions():
            raise ValidationError(
                f"Un bénéficiaire « {self.get_statut_display()} » ne peut pas passer au statut "
                f"« {self.Statut(nouveau).label} »."
            )
        date_passee(date_decision)
        with transaction.atomic():
            # On what is stored, the row locked: the real dates of the events, not the days
            # they were recorded, so a past arrêté entered today follows its proposal.
            Beneficiaire.objects.select_for_update().filter(pk=self.pk).first()
            self.decision_precedente_errors(date_decision)
            decision = DecisionStatut.objects.create(
                beneficiaire=self,
                ancien_statut=self.statut,
                nouveau_statut=nouveau,
                decided_by=by,
                date_decision=date_decision,
                reference=reference,
                motif=motif,
                document=document or "",
            )
            self.statut = nouveau
            self.save(update_fields=["statut", "updated_at"])
            if nouveau not in self.STATUTS_ACTIFS:
                for membre in self.membres.filter(actif=True):
                    membre.actif = False
                    membre.save(update_fields=["actif"])
        return decision


class MembreBeneficiaire(models.Model):
    """A commune's membership of a beneficiary; inactive once it left the programme."""

    beneficiaire = models.ForeignKey(
        Beneficiaire, verbose_name="bénéficiaire", on_delete=models.CASCADE, related_name="membres"
    )
    commune = models.ForeignKey(
        Commune, verbose_name="commune", on_delete=models.PROTECT, related_name="membres"
    )
    actif = models.BooleanField("actif", default=True)
    date_signature = models.DateField(
        "date de signature de la convention (liste ANCT)", null=True, blank=True
    )
    created_at = models.DateTimeField("ajoutée le", auto_now_add=True)

    class Meta:
        verbose_name = "commune du bénéficiaire"
        verbose_name_plural = "communes du bénéficiaire"
        constraints = [
            models.UniqueConstraint(
                fields=["commune"],
                condition=Q(actif=True),
                name="commune_in_one_active_beneficiaire",
                violation_error_message="Cette commune fait déjà partie d'un bénéficiaire actif.",
            ),
            models.UniqueConstraint(
                fields=["beneficiaire", "commune"], name="commune_once_per_beneficiaire"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.commune} dans {self.beneficiaire}"


class IdentifiantPVD(models.Model):
    """ANCT's id_pvd of a commune, per published list (ANCT renumbered them in 2023)."""

    commune = models.ForeignKey(
        Commune, verbose_name="commune", on_delete=models.CASCADE, related_name="identifiants_pvd"
    )
    id_pvd = models.CharField("identifiant PVD", max_length=30, db_index=True)
    date_liste = models.DateField("date de la liste ANCT")

    class Meta:
        verbose_name = "identifiant PVD"
        verbose_name_plural = "identifiants PVD"
        ordering = ["commune", "-date_liste"]
        constraints = [
            models.UniqueConstraint(
                fields=["commune", "date_liste"], name="one_id_pvd_per_commune_and_list"
            )
        ]

    def __str__(self) -> str:
        return f"{self.id_pvd} ({self.date_liste:%d/%m/%Y})"


class DecisionStatutQuerySet(models.QuerySet):
    def for_user(self, user) -> "DecisionStatutQuerySet":
        return self.filter(beneficiaire__in=Beneficiaire.objects.for_user(user))


def decision_upload_to(instance: "DecisionStatut", filename: str) -> str:
    return pdf_upload_name(f"decisions/{instance.beneficiaire_id}")


class DecisionStatut(models.Model):
    """A status change of a beneficiary, with who decided, when and on what basis."""

    beneficiaire = models.ForeignKey(
        Beneficiaire,
        verbose_name="bénéficiaire",
        on_delete=models.CASCADE,
        related_name="decisions",
    )
    ancien_statut = models.CharField(
        "ancien statut", max_length=20, choices=Beneficiaire.Statut.choices, blank=True
    )
    nouveau_statut = models.CharField(
        "nouveau statut", max_length=20, choices=Beneficiaire.Statut.choices
    )
    # Who recorded it on the portal and when (created_at): apart from the decision's own date.
    decided_by = models.ForeignKey(
        "pvd.User",
        verbose_name="enregistrée par",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    date_decision = models.DateField(
        "date de la décision",
        validators=[date_plausible, date_passee],
        help_text="Le jour où la décision a été prise (ou la proposition faite), pas celui où "
        "elle est enregistrée.",
    )
    reference = models.CharField(
        "référence de la décision",
        max_length=250,
        help_text="Arrêté ou courrier, par exemple : arrêté préfectoral n° 2021-045.",
        validators=[texte_une_ligne],
    )
    document = models.FileField("décision (PDF)", upload_to=decision_upload_to, blank=True)
    motif = models.TextField(
        "motif", blank=True, max_length=TEXTE_LONG, validators=TEXTE_LONG_VALIDATORS
    )
    created_at = models.DateTimeField("enregistrée le", auto_now_add=True)

    objects = DecisionStatutQuerySet.as_manager()

    class Meta:
        verbose_name = "décision"
        ordering = ["-date_decision", "-created_at"]

    def __str__(self) -> str:
        return f"{self.get_nouveau_statut_display()} – {self.reference}"


def referentiel_upload_to(instance: "MiseAJourReferentiel", filename: str) -> str:
    # Never the uploader's name: a random one, under the refresh's folder.
    return f"referentiel/{uuid.uuid4().hex}.csv"


class MiseAJourReferentiel(Job):
    """One yearly refresh of the official reference from the portal: the files national staff
    uploaded, run first as a simulation (a dry run that changes nothing), then applied on
    confirmation by a second row pointing at that simulation. ``rapport`` keeps the report."""

    class Mode(models.TextChoices):
        SIMULATION = "simulation", "Simulation"
        APPLICATION = "application", "Application"

    # The files, in the order they are imported (each importer needs the ones before).
    FICHIERS = {
        "cog": "COG de l'INSEE (communes)",
        "siren": "Table communes ↔ SIREN et EPCI",
        "populations": "Populations légales",
        "liste_pvd": "Liste ANCT des communes PVD",
        "ort": "Suivi national des ORT",
        "coordonnees": "Coordonnées des communes",
    }

    mode = models.CharField("mode", max_length=20, choices=Mode.choices, default=Mode.SIMULATION)
    cog = models.FileField(FICHIERS["cog"], upload_to=referentiel_upload_to, blank=True)
    siren = models.FileField(FICHIERS["siren"], upload_to=referentiel_upload_to, blank=True)
    populations = models.FileField(
        FICHIERS["populations"], upload_to=referentiel_upload_to, blank=True
    )
    liste_pvd = models.FileField(FICHIERS["liste_pvd"], upload_to=referentiel_upload_to, blank=True)
    ort = models.FileField(FICHIERS["ort"], upload_to=referentiel_upload_to, blank=True)
    coordonnees = models.FileField(
        FICHIERS["coordonnees"], upload_to=referentiel_upload_to, blank=True
    )
    date_liste = models.DateField(
        "date de la liste ANCT", null=True, blank=True, validators=[date_plausible, date_passee]
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
    fichier = models.FileField(
        "compte rendu (fichier)", upload_to="referentiel/rapports/", blank=True
    )

    TASK = "portail.tasks.mettre_a_jour_referentiel"
    FAILED_AFTER_RETRIES = (
        "La mise à jour du référentiel a échoué après plusieurs tentatives ({error}). "
        "Relancez-la plus tard."
    )
    STALLED = "La mise à jour du référentiel n'a pas abouti (interrompue). Relancez-la."

    class Meta:
        verbose_name = "mise à jour du référentiel"
        verbose_name_plural = "mises à jour du référentiel"
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"{self.get_mode_display()} du {self.requested_at:%d/%m/%Y %H:%M}"

    def result_filename(self) -> str:
        return f"referentiel-{self.mode}-{self.pk}.txt"

    def fichiers(self) -> list[tuple[str, str, models.fields.files.FieldFile]]:
        """(field, label, file) of the files given, in import order."""
        return [
            (name, label, getattr(self, name))
            for name, label in self.FICHIERS.items()
            if getattr(self, name)
        ]
