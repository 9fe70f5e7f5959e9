"""How a view opens one object: the one access helper of every app.

``get_<object>_for_user(request, pk, may=…)`` reads the object through its model's
``for_user`` (another territory's object: 404), then asks `may`, a question of
pvd/policy.py taking (user, object) (refused: 403 with `denied` as the reason). Pages
under one beneficiary use ``BeneficiaireMixin``; pages of the national team use
``NationalRequiredMixin``.

The kernel imports no feature app: the models are looked up by their label.
"""

from collections.abc import Callable

from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from . import policy

May = Callable[..., bool]  # a policy question: may(user, obj) -> bool

READ_ONLY = "Vous ne pouvez que consulter cette page."


def get_for_user(
    request: HttpRequest, queryset: QuerySet, pk: int, may: May | None = None, denied: str = ""
) -> Model:
    """404 outside the reader's perimeter; 403 when `may`, a policy question, says no."""
    obj = get_object_or_404(queryset, pk=pk)
    if may is not None and not may(request.user, obj):
        raise PermissionDenied(denied or READ_ONLY)
    return obj


def _readable(request: HttpRequest, label: str) -> QuerySet:
    return apps.get_model(label).objects.for_user(request.user)


def get_beneficiaire_for_user(
    request: HttpRequest, pk: int, may: May | None = None, denied: str = ""
) -> Model:
    queryset = _readable(request, "communes.Beneficiaire").select_related("departement")
    return get_for_user(request, queryset, pk, may, denied)


def get_convention_for_user(
    request: HttpRequest, pk: int, may: May | None = None, denied: str = ""
) -> Model:
    queryset = _readable(request, "conventions.Convention").select_related("beneficiaire")
    return get_for_user(request, queryset, pk, may, denied)


def get_fiche_for_user(
    request: HttpRequest, pk: int, may: May | None = None, denied: str = ""
) -> Model:
    queryset = _readable(request, "actions.FicheAction").select_related(
        "beneficiaire", "axe", "updated_by"
    )
    return get_for_user(request, queryset, pk, may, denied)


def get_poste_for_user(
    request: HttpRequest, pk: int, may: May | None = None, denied: str = ""
) -> Model:
    return get_for_user(request, _readable(request, "postes.Poste"), pk, may, denied)


class BeneficiaireMixin:
    """Pages under one beneficiary (``self.beneficiaire``): 404 outside the reader's
    perimeter, 403 when `may` says no. `may` is a policy question, None for every reader
    (set it with ``staticmethod(policy.may_…)``: a plain function would become a method)."""

    beneficiaire_kwarg = "pk"
    may: May | None = None
    denied = ""

    def dispatch(self, request, *args, **kwargs):
        self.beneficiaire = get_beneficiaire_for_user(
            request, kwargs[self.beneficiaire_kwarg], self.may, self.denied
        )
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        kwargs.setdefault("beneficiaire", self.beneficiaire)
        return super().get_context_data(**kwargs)


class NationalRequiredMixin:
    """Pages of the national team: 403 unless the policy's `allowed` says yes."""

    allowed = staticmethod(policy.may_manage_access)

    def dispatch(self, request, *args, **kwargs):
        if not self.allowed(request.user):
            raise PermissionDenied("Page réservée à l'équipe nationale de l'ANCT.")
        return super().dispatch(request, *args, **kwargs)
