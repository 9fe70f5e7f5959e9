from django.contrib import admin
from django.urls import include, path, re_path

from pvd import proconnect

from . import views

public = views.PublicPageView.as_view

# The site shell's pages, under the « portail » namespace (this module is the root URLconf).
portail_patterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path(
        "accessibilite/",
        public(template_name="portail/public/accessibilite.html"),
        name="accessibilite",
    ),
    path(
        "mentions-legales/",
        public(template_name="portail/public/mentions_legales.html"),
        name="mentions-legales",
    ),
    path(
        "donnees-personnelles/",
        public(template_name="portail/public/donnees_personnelles.html"),
        name="donnees-personnelles",
    ),
    path(
        "plan-du-site/",
        public(template_name="portail/public/plan_du_site.html"),
        name="plan-du-site",
    ),
    path("acces/", views.UserListView.as_view(), name="user-list"),
    path("acces/nouveau/", views.UserCreateView.as_view(), name="user-create"),
    path("acces/<int:pk>/", views.UserDetailView.as_view(), name="user-detail"),
    path("acces/<int:pk>/modifier/", views.UserUpdateView.as_view(), name="user-update"),
    path("acces/<int:user_pk>/roles/nouveau/", views.RoleCreateView.as_view(), name="role-create"),
    path("acces/roles/<int:pk>/supprimer/", views.role_delete, name="role-delete"),
    path("acces/<int:pk>/proconnect/detacher/", views.proconnect_unlink, name="proconnect-unlink"),
    path("journal/", views.AuditLogView.as_view(), name="audit-log"),
    path("referentiel/", views.ReferentielView.as_view(), name="referentiel"),
    path("referentiel/<int:pk>/", views.ReferentielDetailView.as_view(), name="referentiel-detail"),
    path("deploiement/", views.DeploiementView.as_view(), name="deploiement"),
    path("deploiement/<int:pk>/", views.DeploiementDetailView.as_view(), name="deploiement-detail"),
    path(
        "deploiement/<int:pk>/appliquer/",
        views.deploiement_appliquer,
        name="deploiement-appliquer",
    ),
    path("deploiement/modele.<str:format>", views.deploiement_modele, name="deploiement-modele"),
    path("deploiement/invitations/", views.InvitationListView.as_view(), name="invitations"),
    path(
        "deploiement/invitations/<int:pk>/renvoyer/",
        views.invitation_renvoyer,
        name="invitation-renvoyer",
    ),
    path(
        "referentiel/<int:pk>/appliquer/",
        views.referentiel_appliquer,
        name="referentiel-appliquer",
    ),
]

urlpatterns = [
    path("", include((portail_patterns, "portail"))),
    path("", include("communes.urls")),
    path("conventions/", include("conventions.urls")),
    path("actions/", include("actions.urls")),
    path("postes/", include("postes.urls")),
    path("carte/", include("carte.urls")),
    path("notifications/", include("rappels.urls")),  # reminders and notifications
    path("tableaux/", include("tableaux.urls")),
    path("gouvernance/", include("gouvernance.urls")),
    path("club/", include("club.urls")),  # the Club Petites villes de demain
    path("opendata/", include("opendata.urls")),
    path("api/v1/", include("api.urls")),
    path("cles-api/", include("api.cles_urls")),
    # Addresses are managed by ANCT on the « Accès » pages, not by their owners.
    path("accounts/email/", views.not_found),
    # ProConnect (pvd/proconnect.py): the callback is the redirect URI registered with ProConnect.
    # allauth's generic OpenID Connect routes and its « linked accounts » page stay closed.
    path("accounts/proconnect/login/", proconnect.login, name="proconnect_login"),
    path("accounts/proconnect/login/callback/", proconnect.callback, name="proconnect_callback"),
    re_path(r"^accounts/oidc/", views.not_found),
    path("accounts/3rdparty/", views.not_found),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]
