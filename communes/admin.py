from django.contrib import admin

from .models import EPCI, Commune, Departement, Region


@admin.register(Region)
class RegionAdmin(admin.ModelAdmin):
    list_display = ["code", "nom"]


@admin.register(Departement)
class DepartementAdmin(admin.ModelAdmin):
    list_display = ["code", "nom", "region"]


@admin.register(EPCI)
class EPCIAdmin(admin.ModelAdmin):
    list_display = ["siren", "nom", "nature"]
    search_fields = ["siren", "nom"]


@admin.register(Commune)
class CommuneAdmin(admin.ModelAdmin):
    list_display = ["code", "nom", "departement", "epci", "population"]
    search_fields = ["code", "nom"]
    list_select_related = ["departement", "epci"]
    raw_id_fields = ["epci"]
