import logging

from allauth.account.forms import ResetPasswordForm
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.cache.utils import make_template_fragment_key
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.functional import SimpleLazyObject
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import (
    CreateView,
    DetailView,
    FormView,
    ListView,
    TemplateView,
    UpdateView,
)
from django_filters.views import FilterView

from carte import choroplethe
from communes.models import Commune, MiseAJourReferentiel
from pvd import health, policy, proconnect, spreadsheets
from pvd.access import NationalRequiredMixin
from pvd.audit import readable, readable_for_user_q
from pvd.integrity import IntegrityErrorMixin, create_once
from pvd.jobs import enqueue_on_commit
from pvd.models import Deploiement, ImportRun, Invitation, Role, User
from pvd.pagination import LastPageMixin
from tableaux.cache import timeout as dashboard_timeout
from tableaux.dashboards import home_context, territoires_cache_key, territoires_departements

from . import deploiement
from .filters import LogEntryFilter, UserFilter
from .forms import (
    DeploiementForm,
    MiseAJourReferentielForm,
    RenvoiInvitationForm,
    RoleForm,
    UserForm,
)
from .referentiel import ALREADY_APPLIED, stale_reason

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
        "visiteur": 8,
        "équipe nationale": 57,
        "préfecture": 54,
        "chef de projet": 48,
        "élu": 36,
        "partenaire": 41,
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
        # Each role's dashboard and the cards of the user's roles (tableaux/dashboards.py);
        # the programme's figures replace the counts of France's communes.
        context.update(home_context(self.request, parts=[carte_du_tableau_de_bord]))
        # The tables of the territories the roles name, read only when their cached
        # fragment misses (querysets are lazy).
        departements = policy.role_departements_q(user)
        communes = policy.role_communes_q(user)
        if departements is not None:
            context["departements"] = SimpleLazyObject(
                lambda: territoires_departements(user, context.get("lot"))
            )
        if communes is not None:
            context["communes"] = (
                Commune.objects.filter(communes)
                .select_related("departement", "epci")
                .order_by("nom")
            )
        if departements is not None or communes is not None:
            context["territoires_cache_key"] = territoires_cache_key(user, context.get("lues"))
            context["dashboard_cache_timeout"] = dashboard_timeout()
        return context

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        # The cache entries the page computed again, written together once it is rendered
        # (tableaux.dashboards.prefecture_context).
        if (lues := context.get("lues")) is not None:
            response.add_post_render_callback(lambda _: lues.write())
        return response


def carte_du_tableau_de_bord(user, today, lues, lot) -> tuple[str, tuple] | None:
    """The key of the préfecture home's map fragment (carte/includes/choroplethe_cache.html,
    as its ``{% carte_embed %}`` keys it) and its query, for the home to read it with its
    other fragments and send its query with theirs (tableaux.dashboards.prefecture_context)."""
    carte = choroplethe.a_cacher(user, "perimetre", None, today, lues, lot)
    if not carte["cle"]:
        return None
    key = make_template_fragment_key("carte_choroplethe", [carte["cle"]])
    return key, choroplethe.requete(user, "perimetre", None)


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


# The yearly refresh of the official reference (portail/referentiel.py) ------------------------

REFERENTIEL_REFUSE = "Seule l'équipe nationale met à jour le référentiel."


class ReferentielMixin:
    def dispatch(self, request, *args, **kwargs):
        if not policy.may_refresh_reference(request.user):
            raise PermissionDenied(REFERENTIEL_REFUSE)
        return super().dispatch(request, *args, **kwargs)


class ReferentielView(ReferentielMixin, CreateView):
    """Upload the new official files: they are simulated first, applied on confirmation."""

    form_class = MiseAJourReferentielForm
    template_name = "portail/referentiel.html"

    def get_context_data(self, **kwargs):
        simulations = MiseAJourReferentiel.objects.filter(
            mode=MiseAJourReferentiel.Mode.SIMULATION
        ).select_related("requested_by", "application")
        return super().get_context_data(**kwargs, simulations=simulations[:20])

    def form_valid(self, form):
        return create_once(self.request, form, lambda: self.create(form))

    def create(self, form):
        form.instance.requested_by = self.request.user
        form.instance.mode = MiseAJourReferentiel.Mode.SIMULATION
        with transaction.atomic():
            self.object = form.save()
            enqueue_on_commit(self.object)
        messages.success(
            self.request,
            "Fichiers reçus et vérifiés. La simulation est lancée : rien ne sera enregistré "
            "avant votre confirmation.",
        )
        return redirect("portail:referentiel-detail", pk=self.object.pk)


class ReferentielDetailView(ReferentielMixin, DetailView):
    model = MiseAJourReferentiel
    template_name = "portail/referentiel_detail.html"

    def get_queryset(self):
        return MiseAJourReferentiel.objects.select_related("requested_by", "simulation")

    def get_context_data(self, **kwargs):
        maj = self.object
        application = getattr(maj, "application", None) if maj.simulation_id is None else None
        return super().get_context_data(
            **kwargs,
            application=application,
            stale=stale_reason(maj) if maj.statut == maj.Statut.PRET else "",
        )


@require_POST
def referentiel_appliquer(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply a simulation's files; the database refuses a second application of it."""
    if not policy.may_refresh_reference(request.user):
        raise PermissionDenied(REFERENTIEL_REFUSE)
    simulation = get_object_or_404(
        MiseAJourReferentiel, pk=pk, mode=MiseAJourReferentiel.Mode.SIMULATION
    )
    reason = stale_reason(simulation)
    if reason:
        messages.error(request, reason)
        return redirect("portail:referentiel-detail", pk=pk)
    try:
        with transaction.atomic():
            application = MiseAJourReferentiel.objects.create(
                mode=MiseAJourReferentiel.Mode.APPLICATION,
                simulation=simulation,
                date_liste=simulation.date_liste,
                requested_by=request.user,
            )
            enqueue_on_commit(application)
    except IntegrityError:  # a double click, or a colleague first
        messages.info(request, ALREADY_APPLIED)
        return redirect("portail:referentiel-detail", pk=pk)
    messages.success(request, "Application lancée : tout ou rien, en une seule transaction.")
    return redirect("portail:referentiel-detail", pk=application.pk)


# The national rollout (portail/deploiement.py) ---------------------------------------------------

DEPLOIEMENT_REFUSE = "Seule l'équipe nationale déploie le programme à partir d'un tableau."


class DeploiementMixin:
    def dispatch(self, request, *args, **kwargs):
        if not policy.may_roll_out(request.user):
            raise PermissionDenied(DEPLOIEMENT_REFUSE)
        return super().dispatch(request, *args, **kwargs)


class DeploiementView(DeploiementMixin, FormView):
    """Upload the spreadsheet: kept, then simulated by a job (nothing written)."""

    form_class = DeploiementForm
    template_name = "portail/deploiement.html"

    def get_context_data(self, **kwargs):
        simulations = Deploiement.objects.filter(mode=Deploiement.Mode.SIMULATION)
        recents = simulations.select_related("requested_by", "application")[:20]
        return super().get_context_data(**kwargs, deploiements=recents)

    def form_valid(self, form):
        return create_once(self.request, form, lambda: self.create(form))

    def create(self, form):
        upload = form.cleaned_data["fichier"]
        with transaction.atomic():
            objet = Deploiement(
                mode=Deploiement.Mode.SIMULATION,
                nom_fichier=upload.name[-200:],
                requested_by=self.request.user,
            )
            objet.source.save(upload.name, upload, save=False)
            objet.save()
            enqueue_on_commit(objet)
        return redirect("portail:deploiement-detail", pk=objet.pk)


class DeploiementDetailView(DeploiementMixin, DetailView):
    model = Deploiement
    template_name = "portail/deploiement_detail.html"

    def get_queryset(self):
        return Deploiement.objects.select_related("requested_by", "simulation")

    def get_context_data(self, **kwargs):
        objet = self.object
        application = getattr(objet, "application", None) if objet.simulation_id is None else None
        return super().get_context_data(
            **kwargs,
            application=application,
            may_apply=not deploiement.stale_reason(objet),
        )


@require_POST
def deploiement_appliquer(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply a simulation once: the database refuses a second application of it."""
    if not policy.may_roll_out(request.user):
        raise PermissionDenied(DEPLOIEMENT_REFUSE)
    simulation = get_object_or_404(Deploiement, pk=pk, mode=Deploiement.Mode.SIMULATION)
    reason = deploiement.stale_reason(simulation)
    if reason:
        messages.info(request, reason)
        return redirect("portail:deploiement-detail", pk=pk)
    try:
        with transaction.atomic():
            application = Deploiement.objects.create(
                mode=Deploiement.Mode.APPLICATION,
                simulation=simulation,
                nom_fichier=simulation.nom_fichier,
                requested_by=request.user,
            )
            enqueue_on_commit(application)
    except IntegrityError:  # a double click, or a colleague first
        messages.info(request, deploiement.DEJA_APPLIQUE)
        return redirect("portail:deploiement-detail", pk=pk)
    return redirect("portail:deploiement-detail", pk=application.pk)


def deploiement_modele(request: HttpRequest, format: str) -> HttpResponse:
    """The spreadsheet to fill: the columns the rollout reads."""
    if not policy.may_roll_out(request.user):
        raise PermissionDenied(DEPLOIEMENT_REFUSE)
    if format not in ("csv", "xlsx"):
        raise Http404("Format inconnu : CSV ou XLSX.")
    name = "deploiement-personnes"
    if format == "xlsx":
        return spreadsheets.xlsx_response(deploiement.HEADER, [], name, "Personnes")
    return spreadsheets.csv_response(deploiement.HEADER, [], name)


class InvitationListView(DeploiementMixin, LastPageMixin, ListView):
    """Who was invited, whether they activated their account; resend from here."""

    template_name = "portail/invitations.html"
    paginate_by = 100

    def get_queryset(self):
        invitations = Invitation.objects.select_related("user")
        if self.request.GET.get("etat") == "non_activees":
            invitations = invitations.non_activees()
        return invitations

    def get_context_data(self, **kwargs):
        context = super().get_context_data(
            **kwargs,
            total=Invitation.objects.count(),
            activees=set(Invitation.objects.activees().values_list("pk", flat=True)),
            nombre_activees=Invitation.objects.activees().count(),
            tentatives_max=settings.INVITATIONS_TENTATIVES,
        )
        # One token per button: resending two people from one page sends both.
        context["lignes"] = [(i, RenvoiInvitationForm()) for i in context["object_list"]]
        return context


@require_POST
def invitation_renvoyer(request: HttpRequest, pk: int) -> HttpResponse:
    if not policy.may_roll_out(request.user):
        raise PermissionDenied(DEPLOIEMENT_REFUSE)
    invitation = get_object_or_404(Invitation.objects.select_related("user"), pk=pk)
    form = RenvoiInvitationForm(request.POST)
    if not form.is_valid():  # the token was used: a double click
        messages.info(request, "Cette invitation est déjà renvoyée.")
        return redirect("portail:invitations")

    def resend():
        deploiement.renvoyer(invitation.pk)
        messages.success(request, f"Invitation de {invitation.user.email} renvoyée.")
        return redirect("portail:invitations")

    return create_once(request, form, resend)
