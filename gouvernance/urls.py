from django.urls import path

from . import views

app_name = "gouvernance"

urlpatterns = [
    path("", views.InstanceListView.as_view(), name="list"),
    path("instances/<int:pk>/", views.InstanceDetailView.as_view(), name="instance"),
    path("instances/<int:pk>/modifier/", views.instance_update, name="instance-update"),
    path("instances/<int:pk>/membres/nouveau/", views.membre_create, name="membre-create"),
    path("instances/<int:pk>/reunions/nouvelle/", views.reunion_create, name="reunion-create"),
    path("reunions/<int:pk>/", views.ReunionDetailView.as_view(), name="reunion"),
    path("reunions/<int:pk>/points/nouveau/", views.point_create, name="point-create"),
    path("reunions/<int:pk>/presences/", views.presences, name="presences"),
    path("reunions/<int:pk>/decisions/nouvelle/", views.decision_create, name="decision-create"),
    path("reunions/<int:pk>/statut/", views.statut, name="statut"),
    path("reunions/<int:pk>/convocation/", views.convoquer, name="convoquer"),
    path("reunions/<int:pk>/releve/", views.publier_releve, name="releve-publier"),
    path("releves/<int:pk>/", views.telecharger_releve, name="releve"),
    path("suites/<int:pk>/faite/", views.suite_faite, name="suite-faite"),
]
