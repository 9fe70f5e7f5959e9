from django.apps import AppConfig


class GouvernanceConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "gouvernance"
    verbose_name = "Gouvernance : instances, réunions et décisions"

    def ready(self) -> None:
        from . import signals  # noqa: F401
