"""/api/v1/: read-only. Public open data sets (no key, throttled per address) and the
partners' endpoints (a key: what its user reads, through the same ``for_user`` as the pages).
"""

import functools
import hashlib
import math
import time

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.middleware.http import ConditionalGetMiddleware
from django.urls import reverse
from django.utils.cache import set_response_etag
from django.utils.decorators import decorator_from_middleware
from django.utils.http import http_date
from drf_spectacular.utils import extend_schema, extend_schema_view
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework import mixins, viewsets
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from actions.models import Axe, FicheAction, LigneFinancement
from communes.models import Beneficiaire, MembreBeneficiaire
from conventions.echeances import with_echeances
from conventions.models import Convention
from opendata.jeux import _id_pvd, chiffres_departements, subventions_publiables
from postes.models import Poste

from . import filters, serializers
from .authentication import AnonymeThrottle, CleThrottle

conditional = decorator_from_middleware(ConditionalGetMiddleware)


class OutsideSession:
    """An API view: no login page (LoginRequiredMiddleware), an ETag on every answer and a
    304 for a client that has it (ConditionalGetMiddleware)."""

    @classmethod
    def as_view(cls, *args, **kwargs):
        return login_not_required(conditional(super().as_view(*args, **kwargs)))


# How long a public URL's content date is kept: forgotten, the next answer is dated anew (a
# 200 where a 304 would have done), and a query string nobody asks again goes away.
MEMOIRE_DATES = 7 * 24 * 3600


def dated(view):
    """A public answer's Last-Modified: when this URL first gave this content (its ETag),
    kept in the shared cache. The public sets are read live from several tables, not all of
    them dated (a funder's SIRET, a commune's name…): the first time a content is seen is the
    date that is never too early. A new content gets a later second than the one it replaces,
    so a client's If-Modified-Since answers 304 only while nothing changed (the wrapping
    ConditionalGetMiddleware decides, from the ETag when the client sends If-None-Match)."""

    def date(request, response):
        set_response_etag(response)
        key = "api:modifie:" + hashlib.sha256(request.get_full_path().encode()).hexdigest()
        known = cache.get(key)
        if known and known[0] == response["ETag"]:
            depuis = known[1]
        else:
            depuis = max(math.ceil(time.time()), known[1] + 1 if known else 0)
            cache.set(key, (response["ETag"], depuis), timeout=MEMOIRE_DATES)
        response["Last-Modified"] = http_date(depuis)

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if request.method not in ("GET", "HEAD") or response.status_code != 200:
            return response
        # Dated once rendered, before ConditionalGetMiddleware's own callback reads it.
        response.add_post_render_callback(functools.partial(date, request))
        return response

    return wrapped


class Public(OutsideSession):
    """A public open-data view: an ETag and a Last-Modified (``dated``)."""

    @classmethod
    def as_view(cls, *args, **kwargs):
        view = super(OutsideSession, cls).as_view(*args, **kwargs)
        return login_not_required(conditional(dated(view)))


class PublicViewSet(Public, viewsets.ReadOnlyModelViewSet):
    permission_classes = [AllowAny]
    throttle_classes = [AnonymeThrottle, CleThrottle]


class PartnerViewSet(OutsideSession, viewsets.ReadOnlyModelViewSet):
    """What the key's user reads (``scoped``): another territory's object is a 404."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [CleThrottle]
    model = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI document: no user
            return self.model.objects.none()
        return self.scoped(self.request.user)


def _date_of_beneficiaire(name: str) -> Subquery:
    return Subquery(
        with_echeances(Beneficiaire.objects.filter(pk=OuterRef("beneficiaire_id"))).values(name)[:1]
    )


@extend_schema_view(
    list=extend_schema(summary="Communes du programme (données ouvertes)"),
    retrieve=extend_schema(summary="Une commune du programme, par son code INSEE"),
)
class CommunePvdViewSet(PublicViewSet):
    serializer_class = serializers.CommunePvdSerializer
    filterset_class = filters.CommunePvdFilter
    lookup_url_kwarg = "insee_com"

    def get_queryset(self):
        # Plain rows (values), not model instances: a 1,000-row page costs half as much.
        return (
            MembreBeneficiaire.objects.filter(actif=True)
            .annotate(id_pvd=_id_pvd())
            .order_by("commune_id")
            .values(
                "id_pvd",
                insee_com=F("commune_id"),
                lib_com=F("commune__nom"),
                date_adhesion=Coalesce(F("date_signature"), _date_of_beneficiaire("date_adhesion")),
                siren_epci=F("commune__epci_id"),
                lib_epci=F("commune__epci__nom"),
                insee_dep=F("commune__departement_id"),
                lib_dep=F("commune__departement__nom"),
                insee_reg=F("commune__departement__region_id"),
                lib_reg=F("commune__departement__region__nom"),
                nom_beneficiaire=F("beneficiaire__nom"),
                statut_code=F("beneficiaire__statut"),
                date_convention_cadre=_date_of_beneficiaire("date_cadre"),
            )
        )

    def get_object(self):
        row = self.get_queryset().filter(commune_id=self.kwargs["insee_com"]).first()
        if row is None:
            raise Http404
        return row


@extend_schema_view(list=extend_schema(summary="Conventions-cadres valant ORT signées"))
class ConventionCadreViewSet(PublicViewSet):
    serializer_class = serializers.ConventionCadreSerializer
    filterset_class = filters.ConventionCadreFilter

    def get_queryset(self):
        return (
            Convention.objects.filter(
                type=Convention.Type.CADRE, statut__in=Convention.STATUTS_SIGNES
            )
            .select_related("beneficiaire__departement")
            .order_by("beneficiaire__departement_id", "beneficiaire__nom", "pk")
        )


@extend_schema_view(list=extend_schema(summary="Subventions notifiées (SCDL subventions 2.1.1)"))
class SubventionViewSet(PublicViewSet):
    serializer_class = serializers.SubventionSerializer

    def get_queryset(self):
        return subventions_publiables()


@extend_schema_view(list=extend_schema(summary="Chiffres du programme par département"))
class ChiffresDepartementViewSet(Public, mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [AllowAny]
    throttle_classes = [AnonymeThrottle, CleThrottle]
    serializer_class = serializers.ChiffresDepartementSerializer
    filter_backends = []  # a hundred départements: no filter

    def get_queryset(self):
        rows, _ = chiffres_departements()
        return list(rows)


class RowsViewSet(PartnerViewSet):
    """A partner's list read as plain rows (``values()``), not model instances: on a
    1,000-row page, building instances and walking DRF's fields cost more than the SQL. Each
    page, and each object, gets its related rows (``attach``) in one more query."""

    def attach(self, rows: list[dict]) -> list[dict]:
        return rows

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return None if page is None else self.attach(list(page))

    def get_object(self):
        return self.attach([super().get_object()])[0]


@extend_schema_view(list=extend_schema(summary="Bénéficiaires lisibles avec la clé"))
class BeneficiaireViewSet(RowsViewSet):
    serializer_class = serializers.BeneficiaireSerializer
    filterset_fields = ["departement", "statut"]
    model = Beneficiaire

    def scoped(self, user):
        return (
            Beneficiaire.objects.for_user(user)
            .order_by("nom", "pk")
            .values("id", "nom", "statut", "epci", "departement", "updated_at")
        )

    def attach(self, rows: list[dict]) -> list[dict]:
        communes: dict[int, list[str]] = {row["id"]: [] for row in rows}
        membres = (
            MembreBeneficiaire.objects.filter(beneficiaire__in=communes, actif=True)
            .order_by("commune_id")
            .values_list("beneficiaire_id", "commune_id")
        )
        for beneficiaire, commune in membres:
            communes[beneficiaire].append(commune)
        for row in rows:
            row["communes"] = communes[row["id"]]
        return rows


@extend_schema_view(list=extend_schema(summary="Conventions lisibles avec la clé"))
class ConventionViewSet(PartnerViewSet):
    serializer_class = serializers.ConventionSerializer
    filterset_fields = ["beneficiaire", "type", "statut"]
    model = Convention

    def scoped(self, user):
        return Convention.objects.for_user(user).order_by("beneficiaire", "pk")


@extend_schema_view(list=extend_schema(summary="Fiches action et leurs financements"))
class FicheViewSet(RowsViewSet):
    serializer_class = serializers.FicheSerializer
    filterset_fields = ["beneficiaire", "maturite", "avancement"]
    model = FicheAction

    def scoped(self, user):
        # (beneficiaire, reference) is unique: the order is total, and its index gives it
        # (by the id: "beneficiaire" would sort by the beneficiary's name, a join and a sort).
        return (
            FicheAction.objects.for_user(user)
            .order_by("beneficiaire_id", "reference")
            .values(*serializers.FICHE_COLONNES)
        )

    def attach(self, rows: list[dict]) -> list[dict]:
        # The axes' names apart: a join in the page's query would be one in its count too.
        axes = dict(
            Axe.objects.filter(pk__in={row["axe_id"] for row in rows})
            .order_by()
            .values_list("pk", "nom")
        )
        lignes: dict[int, list[dict]] = {row["id"]: [] for row in rows}
        for ligne in (
            LigneFinancement.objects.filter(fiche__in=lignes)
            .order_by("fiche_id", "financeur__ordre", "pk")
            .values("fiche_id", "dispositif", "montant", "statut", "date_decision")
            .annotate(financeur_nom=F("financeur__nom"))
        ):
            lignes[ligne["fiche_id"]].append(ligne)
        for row in rows:
            row["axe_nom"] = axes[row["axe_id"]]
            row["financements"] = lignes[row["id"]]
        return rows


@extend_schema_view(list=extend_schema(summary="Postes de chef de projet"))
class PosteViewSet(PartnerViewSet):
    serializer_class = serializers.PosteSerializer
    filterset_fields = ["etat"]
    model = Poste

    def scoped(self, user):
        return Poste.objects.for_user(user).prefetch_related("beneficiaires").order_by("pk")


PUBLICS = ["communes-pvd", "conventions-cadres", "subventions", "chiffres-departements"]
PARTENAIRES = ["beneficiaires", "conventions", "fiches", "postes"]


class IndexView(OutsideSession, APIView):
    """/api/v1/: where the documentation and each endpoint are."""

    permission_classes = [AllowAny]
    throttle_classes = [AnonymeThrottle]

    @extend_schema(exclude=True)
    def get(self, request):
        def url(name: str) -> str:
            return request.build_absolute_uri(reverse(name))

        return Response(
            {
                "documentation": url("api:docs"),
                "documentation_redoc": url("api:redoc"),
                "schema": url("api:schema"),
                "donnees_ouvertes": {n: url(f"api:{n}-list") for n in PUBLICS},
                "avec_cle": {n: url(f"api:{n}-list") for n in PARTENAIRES},
            }
        )


class SchemaView(OutsideSession, SpectacularAPIView):
    permission_classes = [AllowAny]
    throttle_classes = [AnonymeThrottle]


class DocsView(OutsideSession, SpectacularSwaggerSplitView):
    permission_classes = [AllowAny]


class RedocView(OutsideSession, SpectacularRedocView):
    """The same document read with Redoc (drf-spectacular-sidecar's bundle, served by the
    portal under its CSP: templates/drf_spectacular/redoc.html)."""

    permission_classes = [AllowAny]
