from django.urls import path

from . import views

app_name = "club"

urlpatterns = [
    path("", views.RechercheView.as_view(), name="recherche"),
    path("export/", views.ExportView.as_view(), name="export"),
    path("fiches/<int:pk>/", views.FicheView.as_view(), name="fiche"),
    path("fiches/<int:pk>/partage/", views.PartageView.as_view(), name="partage"),
    path("annuaire/", views.AnnuaireView.as_view(), name="annuaire"),
    path("contacter/<int:pk>/", views.ContactView.as_view(), name="contact"),
    path("villes-proches/<int:pk>/", views.SimilairesView.as_view(), name="similaires"),
    path("profil/", views.ProfilView.as_view(), name="profil"),
]
