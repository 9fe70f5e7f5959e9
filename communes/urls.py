from django.urls import path

from . import views

app_name = "communes"

urlpatterns = [
    path("communes/", views.CommuneListView.as_view(), name="list"),
    path("communes/<str:pk>/", views.CommuneDetailView.as_view(), name="detail"),
    path("beneficiaires/", views.BeneficiaireListView.as_view(), name="beneficiaire-list"),
    path(
        "beneficiaires/nouveau/", views.BeneficiaireCreateView.as_view(), name="beneficiaire-create"
    ),
    path("beneficiaires/synthese/", views.SyntheseView.as_view(), name="synthese"),
    path("beneficiaires/selection/<str:code>/", views.SelectionView.as_view(), name="selection"),
    path(
        "beneficiaires/<int:pk>/",
        views.BeneficiaireDetailView.as_view(),
        name="beneficiaire-detail",
    ),
    path(
        "beneficiaires/<int:pk>/decision/",
        views.DecisionCreateView.as_view(),
        name="decision-create",
    ),
    path(
        "beneficiaires/decisions/<int:pk>/document/",
        views.DecisionDocumentView.as_view(),
        name="decision-document",
    ),
]
