from django.apps import AppConfig


class CarteConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "carte"
    verbose_name = "carte"

    def ready(self) -> None:
        # The choropleth is cached under the dashboards' version: what it reads renews it.
        from tableaux.signals import watch

        from .choroplethe import READS

        watch(READS)
