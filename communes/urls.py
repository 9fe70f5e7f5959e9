from django.urls import path

from . import views

app_name = "communes"

urlpatterns = [
    path("", views.CommuneListView.as_view(), name="list"),
    path("<str:pk>/", views.CommuneDetailView.as_view(), name="detail"),
]
