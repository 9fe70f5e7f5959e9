import logging

from allauth.account.forms import ResetPasswordForm
from auditlog.models import LogEntry
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import CreateView, DetailView, TemplateView, UpdateView
from django_filters.views import FilterView

from communes.models import Commune, Departement
from pvd import health, policy, proconnect
from pvd.access import NationalRequiredMixin
from pvd.audit import readable, readable_for_user_q
from pvd.integrity import IntegrityErrorMixin, create_once
from pvd.models import ImportRun, Role, User
from pvd.pagination import LastPageMixin
from tableaux.dashboards import home_context

from .filters import LogEntryFilter, UserFilter
from .forms import RoleForm, UserForm

logger = logging.getLogger(__name__)


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.exception("Health check: the database does not answer")
        return JsonResponse({"status": "erreur", "database": "indisponible"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@login_not_required
@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 503 only when pages cannot be served (database, Redis where used).

    National staff, fully logged in, also read the worker, beat, SMTP and periodic tasks.
    """
    ready, report = health.readiness()
    if health.may_read_details(request):
        report["service"] = health.service_report().as_json()
    return JsonResponse(report, status=200 if ready else 503)


# What the accessibility sweep (tests/e2e/test_accessibility_sweep.py) measured last, as the
# accessibility statement publishes it; the sweep fails if this claims more than it checked.
ACCESSIBILITY_TESTS = {
    "date": "7 décembre 2026",
    # Pages checked for each profile (one page of each kind).
    "profils": {
        "visiteur": 7,
        "équipe nationale": 55,
        "préfecture": 38,
        "chef de projet": 33,
        "élu": 27,
        "partenaire": 32,
    },
    # Page states checked besides: dialogs and disclosures open, forms sent back with their
    # errors, searches without result, pages once htmx swapped in what they wait for.
    "etats": {"modales": 12, "volets": 5, "erreurs": 18, "recherches": 8, "htmx": 2},
    # Each page is checked at these window widths (px), in the sweep's order.
    "largeurs": [1280, 320, 768],
}
ACCESSIBILITY_TESTS["pages"] = sum(ACCESSIBILITY_TESTS["profils"].values())
ACCESSIBILITY_TESTS["pages_par_largeur"] = {
    largeur: ACCESSIBILITY_TESTS["pages"] for largeur in ACCESSIBILITY_TESTS["largeurs"]
}
ACCESSIBILITY_TESTS["pages_largeurs"] = sum(ACCESSIBILITY_TESTS["pages_par_largeur"].values())
ACCESSIBILITY_TESTS["nombre_etats"] = sum(ACCESSIBILITY_TESTS["etats"].values())


@method_decorator(login_not_required, name="dispatch")
class PublicPageView(TemplateView):
    """Accessibility statement, legal notice, privacy and site map: readable by anyone."""

    extra_context = {"ACCESSIBILITY_TESTS": ACCESSIBILITY_TESTS}


class HomeView(TemplateView):
    template_name = "portail/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["roles"] = user.roles.select_related("region", "epci").prefetch_related(
            "departements", "communes", "beneficiaires"
        )
        # Each role's dashboard (tableaux/dashboards.py); the programme's figures replace the
        # counts of France's communes.
        context.update(home_context(self.request))
        if (departements := policy.role_departements_q(user)) is not None:
            context["departements"] = (
                Departement.objects.filter(departements).select_related("region").with_counts()
            )
        if (communes := policy.role_communes_q(user)) is not None:
            context["communes"] = (
                Commune.objects.filter(communes)
                .select_related("departement", "epci")
                .order_by("nom")
            )
        return context


def not_found(request: HttpRequest) -> HttpResponse:
    raise Http404


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form sent from an expired page (or without its cookie) is told so
    in French, in the portal's layout, instead of Django's English page."""
    return render(request, "403_csrf.html", status=403)


class UserListView(NationalRequiredMixin, LastPageMixin, FilterView):
    filterset_class = UserFilter
    template_name = "portail/user_list.html"
    paginate_by = 50

    def get_queryset(self):
        return User.objects.prefetch_related(
            "roles__departements",
            "roles__communes",
            "roles__region",
            "roles__epci",
            "socialaccount_set",
        ).order_by("email")


def send_activation_email(request: HttpRequest, user: User) -> None:
    """A new account gets the password-reset mail, which lets its owner choose a password."""
    form = ResetPasswordForm(data={"email": user.email})
    if form.is_valid():
        form.save(request)


class UserCreateView(NationalRequiredMixin, IntegrityErrorMixin, CreateView):
    model = User
    form_class = UserForm
    template_name = "portail/user_form.html"

    def form_valid(self, form):
        form.instance.set_unusable_password()
        response = super().form_valid(form)
        if form.errors:
            return response
        send_activation_email(self.request, self.object)
        messages.success(
            self.request,
            f"Compte créé. Un courriel a été envoyé à {self.object.email} pour choisir "
            "un mot de passe. Ajoutez-lui maintenant un rôle.",
        )
        return response

    def get_success_url(self) -> str:
        return reverse("portail:user-detail", args=[self.object.pk])


class UserUpdateView(NationalRequiredMixin, IntegrityErrorMixin, UpdateView):
    model = User
    form_class = UserForm
    template_name = "portail/user_form.html"

    def form_valid(self, form):
        response = super().form_valid(form)
        if not form.errors:
            messages.success(self.request, "Compte mis à jour.")
        return response

    def get_success_url(self) -> str:
        return reverse("portail:user-detail", args=[self.object.pk])


class UserDetailView(NationalRequiredMixin, DetailView):
    model = User
    template_name = "portail/user_detail.html"
    context_object_name = "account"

    def get_queryset(self):
        return User.objects.prefetch_related(
            "roles__departements",
            "roles__communes",
            "roles__region",
            "roles__epci",
            "socialaccount_set",
        )


class RoleCreateView(NationalRequiredMixin, IntegrityErrorMixin, CreateView):
    model = Role
    form_class = RoleForm
    template_name = "portail/role_form.html"

    def dispatch(self, request, *args, **kwargs):
        self.account = get_object_or_404(User, pk=kwargs["user_pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["instance"] = Role(user=self.account)
        return kwargs

    def get_context_data(self, **kwargs):
        return super().get_context_data(account=self.account, **kwargs)

    def form_valid(self, form):
        parent = super().form_valid
        return create_once(self.request, form, lambda: self.create(form, parent))

    def create(self, form, parent):
        response = parent(form)
        if isinstance(response, HttpResponseRedirect):
            messages.success(self.request, f"Rôle ajouté : {self.object}.")
        return response

    def get_success_url(self) -> str:
        return reverse("portail:user-detail", args=[self.account.pk])


@require_POST
def role_delete(request: HttpRequest, pk: int) -> HttpResponse:
    if not policy.may_manage_access(request.user):
        raise PermissionDenied("Seule l'équipe nationale gère les accès.")
    role = get_object_or_404(Role.objects.select_related("user"), pk=pk)
    role.delete()
    messages.success(request, f"Rôle retiré à {role.user.email}.")
    return redirect("portail:user-detail", pk=role.user_id)


@require_POST
def proconnect_unlink(request: HttpRequest, pk: int) -> HttpResponse:
    """Detach the ProConnect identity, e.g. when the agent's identity changed at the provider:
    the next ProConnect login finds the account by e-mail again."""
    if not policy.may_manage_access(request.user):
        raise PermissionDenied("Seule l'équipe nationale gère les accès.")
    account = get_object_or_404(User, pk=pk)
    deleted, _ = account.socialaccount_set.filter(provider=proconnect.PROVIDER_ID).delete()
    if deleted:
        messages.success(request, f"Identité ProConnect détachée du compte {account.email}.")
    return redirect("portail:user-detail", pk=account.pk)


class AuditLogView(NationalRequiredMixin, LastPageMixin, FilterView):
    allowed = staticmethod(policy.may_read_audit_log)
    filterset_class = LogEntryFilter
    template_name = "portail/audit_log.html"
    paginate_by = 50

    def get_queryset(self):
        entries = LogEntry.objects.filter(readable_for_user_q(self.request.user))
        return entries.select_related("actor", "content_type").order_by("-timestamp")

    def paginate_queryset(self, queryset, page_size):
        paginator, page, entries, is_paginated = super().paginate_queryset(queryset, page_size)
        page.object_list = readable(list(entries))
        return paginator, page, page.object_list, is_paginated

    def get_context_data(self, **kwargs):
        national = policy.is_national(self.request.user)
        imports = ImportRun.objects.all()[:20] if national else []
        return super().get_context_data(national=national, imports=imports, **kwargs)
