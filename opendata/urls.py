from django.urls import path

from . import views

app_name = "opendata"
urlpatterns = [
    path("", views.OpenDataView.as_view(), name="index"),
    path("<slug:slug>.csv", views.derniere, name="derniere"),
    path("<slug:slug>/<int:pk>.csv", views.fichier, name="fichier"),
]
