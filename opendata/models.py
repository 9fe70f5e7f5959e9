from django.db import models
from django.db.models import OuterRef, Subquery

from pvd.jobs import Job, JobQuerySet


def publication_upload_to(instance: "Publication", filename: str) -> str:
    return f"opendata/{instance.jeu}/{filename}"


class PublicationQuerySet(JobQuerySet):
    def pretes(self) -> "PublicationQuerySet":
        return self.filter(statut=Job.Statut.PRET)

    def dernieres(self) -> "PublicationQuerySet":
        """The latest ready file of each data set."""
        latest = (
            self.model.objects.pretes()
            .filter(jeu=OuterRef("jeu"))
            .order_by("-finished_at", "-pk")
            .values("pk")[:1]
        )
        return self.pretes().filter(pk=Subquery(latest))


class Publication(Job):
    """One dated file of an open data set (opendata/jeux.py), built by the beat: each file is
    kept with its date, the page and the API serve the latest."""

    jeu = models.CharField("jeu de données", max_length=50, db_index=True)
    lignes = models.PositiveIntegerField("lignes", default=0)
    # Rows of the source left out of the file: in all, and by reason (opendata/jeux.py,
    # Jeu.exclusions: for the SCDL file, a funder without SIRET…).
    lignes_exclues = models.PositiveIntegerField("lignes écartées", default=0)
    exclusions = models.JSONField("lignes écartées par motif", default=dict, blank=True)
    fichier = models.FileField("fichier", upload_to=publication_upload_to, blank=True)

    objects = PublicationQuerySet.as_manager()

    TASK = "opendata.tasks.build_publication"
    FAILED_AFTER_RETRIES = "La publication a échoué après plusieurs tentatives ({error})."
    STALLED = "La publication n'a pas abouti (interrompue)."

    class Meta:
        verbose_name = "publication de données ouvertes"
        verbose_name_plural = "publications de données ouvertes"
        ordering = ["jeu", "-requested_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.jeu} du {self.requested_at:%d/%m/%Y}"

    def result_filename(self) -> str:
        return f"{self.jeu}-{self.requested_at:%Y%m%d-%H%M%S}.csv"
