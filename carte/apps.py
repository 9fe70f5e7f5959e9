from django.apps import AppConfig


class CarteConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "carte"
    verbose_name = "carte"

    def ready(self) -> None:
        # The choropleth is cached under its own family of versions per territory: what it
        # reads renews them (a fiche changed leaves it warm).
        from tableaux.signals import watch

        from .choroplethe import READS

        watch(READS, family="carte")
