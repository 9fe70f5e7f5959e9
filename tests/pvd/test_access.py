"""pvd/access.py: how every view opens one object (404 outside the perimeter, 403 when the
policy says no, in that order)."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.test import RequestFactory
from django.views import View

from pvd import policy
from pvd.access import BeneficiaireMixin, get_beneficiaire_for_user


def request_as(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def test_a_reader_gets_the_beneficiary_and_another_territory_a_404(
    elu_ussel, ussel_la_courtine, le_blanc
):
    request = request_as(elu_ussel)
    assert get_beneficiaire_for_user(request, ussel_la_courtine.pk) == ussel_la_courtine
    with pytest.raises(Http404):
        get_beneficiaire_for_user(request, le_blanc.pk)
    # Outside the perimeter, the policy is not even asked: 404, never 403.
    with pytest.raises(Http404):
        get_beneficiaire_for_user(request, le_blanc.pk, policy.may_edit_plan)


def test_the_policy_refusing_gives_a_403_with_its_reason(elu_ussel, cdp_ussel, ussel_la_courtine):
    with pytest.raises(PermissionDenied, match="consulter le plan"):
        get_beneficiaire_for_user(
            request_as(elu_ussel), ussel_la_courtine.pk, policy.may_edit_plan, "consulter le plan"
        )
    request = request_as(cdp_ussel)
    assert get_beneficiaire_for_user(request, ussel_la_courtine.pk, policy.may_edit_plan)


class PlanPage(BeneficiaireMixin, View):
    may = staticmethod(policy.may_edit_plan)
    denied = "Vous ne pouvez que consulter."

    def get(self, request, *args, **kwargs):
        return HttpResponse(self.beneficiaire.nom)


@pytest.mark.parametrize(
    ("who", "expected"),
    [("cdp_ussel", 200), ("elu_ussel", PermissionDenied), ("prefecture_36", Http404)],
)
def test_the_beneficiary_mixin_opens_its_page_for_whom_the_policy_allows(
    request, who, expected, ussel_la_courtine
):
    user = request.getfixturevalue(who)
    view = PlanPage.as_view()
    if expected == 200:
        assert view(request_as(user), pk=ussel_la_courtine.pk).content.decode() == (
            ussel_la_courtine.nom
        )
    else:
        with pytest.raises(expected):
            view(request_as(user), pk=ussel_la_courtine.pk)
