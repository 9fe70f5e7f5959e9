from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "actions"
    verbose_name = "Plans d'action ORT"

    def ready(self) -> None:
        from . import signals  # noqa: F401
