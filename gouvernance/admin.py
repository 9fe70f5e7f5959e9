from django.contrib import admin

from .models import Instance, Membre


class MembreInline(admin.TabularInline):
    model = Membre
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ["nom", "type", "reunions_par_an"]
    list_filter = ["type"]
    search_fields = ["nom"]
    raw_id_fields = ["beneficiaire"]
    inlines = [MembreInline]
