"""Which models the audit trail follows (django-auditlog): who changed what, and when."""

from auditlog.registry import auditlog
from django.apps import apps

from .models import Role, User

auditlog.register(User, exclude_fields=["password", "last_login"])
auditlog.register(Role, m2m_fields={"departements", "communes"})
for model_name in (
    "Region",
    "Departement",
    "EPCI",
    "Commune",
    "Beneficiaire",
    "MembreBeneficiaire",
    "IdentifiantPVD",
    "DecisionStatut",
):
    auditlog.register(apps.get_model("communes", model_name), exclude_fields=["nom_recherche"])

for model_name in (
    "Convention",
    "Partie",
    "SecteurIntervention",
    "DocumentConvention",
    "ScanSigne",
):
    auditlog.register(apps.get_model("conventions", model_name))

for model_name in (
    "Axe",
    "FicheAction",
    "LigneFinancement",
    "Indicateur",
    "Mesure",
    "PointAvancement",
):
    auditlog.register(apps.get_model("actions", model_name))

auditlog.register(apps.get_model("postes", "Poste"), m2m_fields={"beneficiaires", "communes"})
for model_name in (
    "ChangementEtat",
    "Occupation",
    "RegleCofinancement",
    "CofinancementAnnee",
    "LigneCofinancement",
):
    auditlog.register(apps.get_model("postes", model_name))
