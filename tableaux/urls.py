from django.urls import path

from . import views

app_name = "tableaux"
urlpatterns = [
    path("beneficiaire/<int:pk>/", views.VilleView.as_view(), name="ville"),
    path("beneficiaire/<int:pk>/bilan/", views.request_bilan, name="bilan-request"),
    path("beneficiaire/<int:pk>/bilans/", views.bilans, name="bilans"),
    path("bilans/<int:pk>/", views.download_bilan, name="bilan"),
    path("programme/", views.ProgrammeView.as_view(), {"niveau": "france"}, name="france"),
    path(
        "programme/region/<str:code>/",
        views.ProgrammeView.as_view(),
        {"niveau": "region"},
        name="region",
    ),
    path(
        "programme/departement/<str:code>/",
        views.ProgrammeView.as_view(),
        {"niveau": "departement"},
        name="departement",
    ),
    path(
        "beneficiaires.<str:format>",
        views.BeneficiairesExportView.as_view(),
        name="beneficiaires-export",
    ),
]
