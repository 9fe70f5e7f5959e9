from django.urls import include, path

from . import views

app_name = "actions"

urlpatterns = [
    path("", views.PlanListView.as_view(), name="list"),
    path("beneficiaire/<int:pk>/", views.PlanView.as_view(), name="plan"),
    path("beneficiaire/<int:pk>/commencer/", views.plan_start, name="plan-start"),
    path("beneficiaire/<int:pk>/axes/", views.AxesView.as_view(), name="axes"),
    path(
        "beneficiaire/<int:pk>/fiches/nouvelle/",
        views.FicheCreateView.as_view(),
        name="fiche-create",
    ),
    path("fiches/<int:pk>/", views.FicheDetailView.as_view(), name="fiche"),
    path("fiches/<int:pk>/modifier/", views.FicheUpdateView.as_view(), name="fiche-update"),
    path("fiches/<int:pk>/indicateurs/", views.IndicateursView.as_view(), name="indicateurs"),
    path(
        "fiches/<int:pk>/mesures/nouvelle/", views.MesureCreateView.as_view(), name="mesure-create"
    ),
    path("fiches/<int:pk>/points/nouveau/", views.PointCreateView.as_view(), name="point-create"),
    path("points/<int:pk>/piece-jointe/", views.piece_jointe, name="piece-jointe"),
    path("financeurs/", views.FinanceurListView.as_view(), name="financeur-list"),
    path("financeurs/nouveau/", views.FinanceurCreateView.as_view(), name="financeur-create"),
    path(
        "financeurs/<int:pk>/modifier/",
        views.FinanceurUpdateView.as_view(),
        name="financeur-update",
    ),
    path("financeurs/<int:pk>/supprimer/", views.financeur_delete, name="financeur-delete"),
    path("", include("actions.excel_urls")),
]
