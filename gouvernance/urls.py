from django.urls import path

from . import views

app_name = "gouvernance"

urlpatterns = [
    path("", views.InstanceListView.as_view(), name="list"),
    path("instances/nouvelle/", views.instance_create, name="instance-create"),
    path("instances/<int:pk>/supprimer/", views.instance_delete, name="instance-delete"),
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
    path("reunions/<int:pk>/modifier/", views.reunion_update, name="reunion-update"),
    path("membres/<int:pk>/modifier/", views.membre_update, name="membre-update"),
    path("membres/<int:pk>/supprimer/", views.membre_delete, name="membre-delete"),
    path("points/<int:pk>/modifier/", views.point_update, name="point-update"),
    path("points/<int:pk>/supprimer/", views.point_delete, name="point-delete"),
    path("points/<int:pk>/monter/", views.point_move, {"step": -1}, name="point-up"),
    path("points/<int:pk>/descendre/", views.point_move, {"step": 1}, name="point-down"),
    path("decisions/<int:pk>/modifier/", views.decision_update, name="decision-update"),
    path("decisions/<int:pk>/supprimer/", views.decision_delete, name="decision-delete"),
    path("suites/<int:pk>/modifier/", views.suite_update, name="suite-update"),
]
