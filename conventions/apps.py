from django.apps import AppConfig


class ConventionsConfig(AppConfig):
    name = "conventions"
    verbose_name = "Conventions"

    def ready(self):
        from communes import synthese
        from communes.models import Beneficiaire

        from .echeances import sans_date_adhesion

        # The synthèse nationale counts, per département, the lauréats whose convention-cadre
        # deadline cannot be computed.
        synthese.COMPTES["sans_date_adhesion"] = lambda: sans_date_adhesion(
            Beneficiaire.objects.all()
        )
