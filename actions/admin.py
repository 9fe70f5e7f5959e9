from django.contrib import admin

from .models import Financeur


@admin.register(Financeur)
class FinanceurAdmin(admin.ModelAdmin):
    list_display = ["nom", "description", "ordre", "actif"]
    list_editable = ["ordre", "actif"]
