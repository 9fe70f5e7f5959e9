from django.contrib import admin

from .models import (
    ChangementEtat,
    CofinancementAnnee,
    LigneCofinancement,
    Occupation,
    Poste,
    RegleCofinancement,
)


class OccupationInline(admin.TabularInline):
    model = Occupation
    extra = 0
    raw_id_fields = ["role"]


class ChangementEtatInline(admin.TabularInline):
    model = ChangementEtat
    extra = 0
    raw_id_fields = ["by"]


@admin.register(Poste)
class PosteAdmin(admin.ModelAdmin):
    list_display = ["intitule", "employeur_nom", "etat", "vacant_depuis"]
    list_filter = ["etat", "type_contrat"]
    search_fields = ["intitule", "employeur_nom", "employeur_siren"]
    filter_horizontal = ["beneficiaires"]
    raw_id_fields = ["communes"]
    inlines = [OccupationInline, ChangementEtatInline]


class LigneInline(admin.TabularInline):
    model = LigneCofinancement
    extra = 0


@admin.register(CofinancementAnnee)
class CofinancementAnneeAdmin(admin.ModelAdmin):
    list_display = ["poste", "annee", "cout_charge", "reference_dossier"]
    list_filter = ["annee"]
    raw_id_fields = ["poste"]
    inlines = [LigneInline]


@admin.register(RegleCofinancement)
class RegleCofinancementAdmin(admin.ModelAdmin):
    list_display = ["libelle", "financeur", "condition", "date_debut", "date_fin", "taux"]
