from django.apps import AppConfig


class PvdConfig(AppConfig):
    name = "pvd"
    verbose_name = "Portail PVD"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from . import audit, mfa, signals  # noqa: F401
        from .middleware import stamp_session

        user_logged_in.connect(stamp_session, dispatch_uid="pvd-stamp-session")
