from django.apps import AppConfig


class CarteConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "carte"
    verbose_name = "carte"

    def ready(self) -> None:
        # The choropleth and the communes' GeoJSON are cached under their own family of
        # versions per territory (``carte``), the map's fiches under another (``carte-fiches``):
        # what each reads renews its family only (a fiche changed leaves the choropleth warm).
        from tableaux.signals import watch

        from . import choroplethe, fiches

        watch(choroplethe.READS, family="carte")
        watch(fiches.READS, family=fiches.FAMILLE)
