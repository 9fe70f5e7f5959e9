from django.apps import AppConfig


class CarteConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "carte"
    verbose_name = "carte"

    def ready(self) -> None:
        # The choropleth and the map's data (the communes read what the choropleth reads,
        # the fiches their own) are cached under the dashboards' version: what they read
        # renews it.
        from tableaux.signals import watch

        from . import choroplethe, fiches

        watch(choroplethe.READS + fiches.READS)
