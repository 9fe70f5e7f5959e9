from django.apps import AppConfig


class RappelsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rappels"
    verbose_name = "rappels et notifications"

    def ready(self) -> None:
        from . import signals  # noqa: F401
