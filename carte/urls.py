from django.urls import path

from . import views

app_name = "carte"

urlpatterns = [
    path("", views.CarteView.as_view(), name="carte"),
    path("donnees.geojson", views.carte_geojson, name="geojson"),
    path("fiches.json", views.carte_fiches, name="fiches"),
    path("fiches/<int:pk>.json", views.carte_fiche, name="fiche"),
    path("departements.svg", views.departements_svg, name="departements-svg"),
]
