from django.urls import path

from . import views

app_name = "conventions"

urlpatterns = [
    path("", views.ConventionListView.as_view(), name="list"),
    path("echeances/", views.EcheancesView.as_view(), name="echeances"),
    path(
        "dates-adhesion/",
        views.ImportDatesAdhesionView.as_view(),
        name="dates-adhesion-import",
    ),
    path(
        "dates-adhesion/modele.<str:format>",
        views.modele_dates_adhesion,
        name="dates-adhesion-modele",
    ),
    path(
        "beneficiaire/<int:beneficiaire_pk>/date-adhesion/",
        views.DateAdhesionView.as_view(),
        name="date-adhesion",
    ),
    path(
        "beneficiaire/<int:beneficiaire_pk>/nouvelle/",
        views.ConventionCreateView.as_view(),
        name="create",
    ),
    path("<int:pk>/", views.ConventionDetailView.as_view(), name="detail"),
    path("<int:pk>/modifier/", views.ConventionUpdateView.as_view(), name="update"),
    path("<int:pk>/parties/", views.PartiesView.as_view(), name="parties"),
    path("<int:pk>/secteurs/", views.SecteursView.as_view(), name="secteurs"),
    path("<int:pk>/envoyer/", views.change_state, {"action": "envoyer"}, name="envoyer"),
    path("<int:pk>/signer/", views.change_state, {"action": "signer"}, name="signer"),
    path("<int:pk>/dater/", views.change_state, {"action": "dater"}, name="dater"),
    path("<int:pk>/resilier/", views.ResiliationView.as_view(), name="resilier"),
    path("<int:pk>/generer/", views.generate, name="generate"),
    path("<int:pk>/documents/", views.documents, name="documents"),
    path("<int:pk>/scans/", views.upload_scan, name="upload-scan"),
    path("documents/<int:pk>/", views.download_document, name="download-document"),
    path("scans/<int:pk>/", views.download_scan, name="download-scan"),
]
