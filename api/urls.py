from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import views

app_name = "api"

router = SimpleRouter()
# Public: the open data sets.
router.register("communes-pvd", views.CommunePvdViewSet, basename="communes-pvd")
router.register("conventions-cadres", views.ConventionCadreViewSet, basename="conventions-cadres")
router.register("subventions", views.SubventionViewSet, basename="subventions")
router.register(
    "chiffres-departements", views.ChiffresDepartementViewSet, basename="chiffres-departements"
)
# With a key: what its user reads.
router.register("beneficiaires", views.BeneficiaireViewSet, basename="beneficiaires")
router.register("conventions", views.ConventionViewSet, basename="conventions")
router.register("fiches", views.FicheViewSet, basename="fiches")
router.register("postes", views.PosteViewSet, basename="postes")

urlpatterns = [
    path("", views.IndexView.as_view(), name="index"),
    path("schema/", views.SchemaView.as_view(), name="schema"),
    path("docs/", views.DocsView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", views.RedocView.as_view(url_name="api:schema"), name="redoc"),
    path("", include(router.urls)),
]
