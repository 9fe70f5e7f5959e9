from django.urls import path

from . import views

app_name = "rappels"

urlpatterns = [
    path("", views.RappelListView.as_view(), name="list"),
    path("<int:pk>/lue/", views.mark_read, name="mark-read"),
    path("tout-lu/", views.mark_all_read, name="mark-all-read"),
    path("apercu/", views.ApercuView.as_view(), name="apercu"),
    path("preferences/", views.PreferencesView.as_view(), name="preferences"),
    path("desabonnement/<str:token>/", views.unsubscribe, name="desabonnement"),
    path("sante/", views.SanteView.as_view(), name="sante"),
]
