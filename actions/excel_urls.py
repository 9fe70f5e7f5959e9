"""Workbook and export pages; included by actions/urls.py inside the ``actions`` namespace."""

from django.urls import path, re_path

from . import excel_views as views

urlpatterns = [
    path("beneficiaire/<int:pk>/excel/", views.excel, name="excel"),
    path("beneficiaire/<int:pk>/excel/modele.xlsx", views.excel_template, name="excel-template"),
    path(
        "beneficiaire/<int:pk>/excel/import/",
        views.ExcelImportView.as_view(),
        name="excel-import",
    ),
    re_path(
        r"^beneficiaire/(?P<pk>\d+)/export\.(?P<format>csv|xlsx)$",
        views.export_plan,
        name="export",
    ),
    path("exports/", views.export_list, name="exports"),
    path("export/departement/", views.export_departement, name="export-departement"),
    path("export/national/", views.export_national, name="export-national"),
    path("export/national.csv", views.export_national_csv, name="export-national-csv"),
    path("export/<int:pk>/", views.export_status, name="export-status"),
    path("export/<int:pk>/progression/", views.export_progress, name="export-progress"),
    path("export/<int:pk>/telecharger/", views.export_download, name="export-download"),
]
