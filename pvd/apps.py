from django.apps import AppConfig


class PvdConfig(AppConfig):
    name = "pvd"
    verbose_name = "Portail PVD"

    def ready(self) -> None:
        from . import audit  # noqa: F401
