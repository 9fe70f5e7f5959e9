from django.urls import path

from . import views

app_name = "carte"

urlpatterns = [
    path("", views.CarteView.as_view(), name="carte"),
    path("donnees.geojson", views.carte_geojson, name="geojson"),
    path("departements.svg", views.departements_svg, name="departements-svg"),
]
