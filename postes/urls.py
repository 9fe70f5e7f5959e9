from django.urls import path

from . import views

app_name = "postes"

urlpatterns = [
    path("", views.PosteListView.as_view(), name="list"),
    path("nouveau/", views.PosteCreateView.as_view(), name="create"),
    path("<int:pk>/", views.PosteDetailView.as_view(), name="detail"),
    path("<int:pk>/modifier/", views.PosteUpdateView.as_view(), name="update"),
    path("<int:pk>/etat/", views.EtatView.as_view(), name="etat"),
    path("<int:pk>/fiche-de-poste/", views.fiche_de_poste, name="fiche"),
    path(
        "<int:pk>/prise-de-poste/", views.OccupationCreateView.as_view(), name="occupation-create"
    ),
    path("occupations/<int:pk>/depart/", views.DepartView.as_view(), name="depart"),
    path(
        "<int:pk>/cofinancement/nouveau/",
        views.CofinancementView.as_view(),
        name="cofinancement-create",
    ),
    path(
        "<int:pk>/cofinancement/<int:annee_pk>/",
        views.CofinancementView.as_view(),
        name="cofinancement-update",
    ),
    path("regles/", views.RegleListView.as_view(), name="regles"),
    path("regles/nouvelle/", views.RegleCreateView.as_view(), name="regle-create"),
    path("regles/<int:pk>/modifier/", views.RegleUpdateView.as_view(), name="regle-update"),
]
