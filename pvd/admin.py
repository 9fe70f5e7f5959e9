from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from .models import ImportRun, Role, User


class RoleInline(admin.TabularInline):
    model = Role
    extra = 0
    raw_id_fields = ["epci", "communes"]
    filter_horizontal = ["departements", "financeurs"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_active", "is_staff"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Identité", {"fields": ("first_name", "last_name")}),
        ("Droits", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    inlines = [RoleInline]


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = ["kind", "started_at", "created", "updated", "unchanged", "skipped"]
    # Written by the importers: the admin shows it, nobody edits it.
    readonly_fields = ["kind", "files", "created", "updated", "unchanged", "skipped", "report"]


def admin_login(request, extra_context=None):
    """The admin has no login of its own: the portal's (same rate limits, lockout, MFA).
    A logged-in account without admin access gets a 403 rather than a login loop."""
    if request.user.is_authenticated:
        raise PermissionDenied("Cette page est réservée aux administrateurs du portail.")
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"))


admin.site.login = admin_login
