from django.db import models

from communes.models import Beneficiaire
from pvd.french import de
from pvd.jobs import Job


def bilan_upload_to(instance: "Bilan", filename: str) -> str:
    return f"bilans/{instance.beneficiaire_id}/{filename}"


class Bilan(Job):
    """A dated report of a beneficiary's plan (« Télécharger le bilan »): each one is kept as
    generated, so a report of the past does not change when the plan does."""

    beneficiaire = models.ForeignKey(
        Beneficiaire, verbose_name="bénéficiaire", on_delete=models.CASCADE, related_name="bilans"
    )
    fichier = models.FileField("fichier", upload_to=bilan_upload_to, blank=True)

    TASK = "tableaux.tasks.generate_bilan"
    FAILED_AFTER_RETRIES = (
        "La génération du bilan a échoué après plusieurs tentatives ({error}). "
        "Relancez-la plus tard."
    )
    STALLED = "La génération du bilan n'a pas abouti (interrompue). Relancez-la."

    class Meta:
        verbose_name = "bilan"
        verbose_name_plural = "bilans"
        ordering = ["beneficiaire", "-requested_at"]

    def __str__(self) -> str:
        return f"Bilan {de(self.beneficiaire.nom)} du {self.requested_at:%d/%m/%Y}"

    def result_filename(self) -> str:
        return f"bilan-{self.beneficiaire_id}-{self.pk}.pdf"
