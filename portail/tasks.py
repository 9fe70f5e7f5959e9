from celery import shared_task

from pvd.jobs import HeartbeatTask, JobTask

from . import deploiement
from .referentiel import mettre_a_jour


@shared_task(base=JobTask, job_model="communes.MiseAJourReferentiel", max_retries=3)
def mettre_a_jour_referentiel(maj_id: int) -> None:
    mettre_a_jour(maj_id)


@shared_task(base=HeartbeatTask)
def envoyer_invitations() -> None:
    """The rollout's due invitations, INVITATIONS_PAR_MINUTE at most (beat: every minute)."""
    deploiement.envoyer_invitations()


@shared_task(base=JobTask, job_model="pvd.Deploiement", max_retries=3)
def deployer(deploiement_id: int) -> None:
    deploiement.run(deploiement_id)
