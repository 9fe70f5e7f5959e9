from django.apps import AppConfig


class TableauxConfig(AppConfig):
    name = "tableaux"
    verbose_name = "Tableaux de bord"

    def ready(self) -> None:
        from . import signals  # noqa: F401
