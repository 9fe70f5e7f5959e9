from django.apps import AppConfig


class PostesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "postes"
    verbose_name = "Postes de chef de projet"

    def ready(self) -> None:
        from . import signals  # noqa: F401
