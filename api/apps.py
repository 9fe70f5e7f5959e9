from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API et plateforme des projets"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from . import signals  # noqa: F401
        from .models import CleApi

        # Created and revoked by national staff: the journal says who and when.
        auditlog.register(CleApi, exclude_fields=["empreinte", "derniere_utilisation"])
