from django.urls import path

from . import cles_views

app_name = "api-cles"
urlpatterns = [
    path("", cles_views.CleApiListView.as_view(), name="list"),
    path("nouvelle/", cles_views.CleApiCreateView.as_view(), name="create"),
    path("<int:pk>/nouvelle-cle/", cles_views.nouvelle_cle, name="show-new"),
    path("<int:pk>/revoquer/", cles_views.revoquer, name="revoke"),
]
