from django.apps import AppConfig


class ClubConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "club"
    verbose_name = "Club Petites villes de demain"

    def ready(self) -> None:
        from . import signals

        signals.connect()
