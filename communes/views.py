from django.views.generic import DetailView
from django_filters.views import FilterView

from .filters import CommuneFilter
from .models import Commune


class CommuneListView(FilterView):
    filterset_class = CommuneFilter
    template_name = "communes/commune_list.html"
    paginate_by = 50

    def get_queryset(self):
        return Commune.objects.for_user(self.request.user).select_related("departement", "epci")

    def get_filterset_kwargs(self, filterset_class):
        return {**super().get_filterset_kwargs(filterset_class), "user": self.request.user}


class CommuneDetailView(DetailView):
    template_name = "communes/commune_detail.html"

    def get_queryset(self):
        return Commune.objects.for_user(self.request.user).select_related(
            "departement__region", "epci"
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        commune = self.object
        if commune.epci_id:
            context["epci_communes"] = (
                Commune.objects.for_user(self.request.user)
                .filter(epci_id=commune.epci_id)
                .exclude(pk=commune.pk)
                .only("code", "nom", "population")
            )
        return context
