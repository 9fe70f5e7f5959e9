"""Small things people met reading the portal (issue 25): ids in URLs, the CSRF failure page,
live regions for jobs, page numbers beyond the end."""

import re

import pytest
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.views.generic.list import MultipleObjectMixin

from communes.models import Beneficiaire, MembreBeneficiaire
from pvd.pagination import LastPageMixin
from tests.factories import CommuneFactory

pytestmark = pytest.mark.django_db


def test_new_post_link_keeps_a_four_digit_beneficiary_id(client_for, prefecture_19):
    """USE_THOUSAND_SEPARATOR wrote « ?beneficiaire=1 386 », which the form could not read."""
    beneficiaire = Beneficiaire.objects.create(
        pk=1386, nom="Égletons", departement_id="19", statut=Beneficiaire.Statut.LAUREAT
    )
    MembreBeneficiaire.objects.create(
        beneficiaire=beneficiaire, commune=CommuneFactory(code="19076", departement_id="19")
    )
    client = client_for(prefecture_19)
    html = client.get(f"/beneficiaires/{beneficiaire.pk}/").content.decode()
    assert 'href="/postes/nouveau/?beneficiaire=1386"' in html
    form = client.get("/postes/nouveau/?beneficiaire=1386").context["form"]
    assert form.initial["beneficiaires"] == [1386]


@override_settings(DEBUG=False)
def test_csrf_failure_is_told_in_french_in_the_portals_layout():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"login": "anct@test.pvd.fr", "password": "x"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "<h1>Formulaire expiré</h1>" in html
    assert "rechargez-la" in html
    assert 'class="fr-header' in html  # the portal's header, not Django's bare page
    assert "CSRF verification failed" not in html


@pytest.mark.parametrize(
    "polled", ['<section id="bilans"', '<div id="documents"', '<div id="export-progress"']
)
def test_a_live_region_holds_each_polled_job_before_any_swap(polled):
    """htmx swaps the job's container (outerHTML): a screen reader hears the new content
    only if a live region around it was in the page from the start."""
    from django.template.loader import get_template

    sources = {
        '<section id="bilans"': "tableaux/includes/ville.html",
        '<div id="documents"': "conventions/convention_detail.html",
        '<div id="export-progress"': "actions/excel_export_status.html",
    }
    source = get_template(sources[polled]).template.source
    include = re.search(r'<div aria-live="polite"[^>]*>\s*{% include "([^"]+)"', source)
    assert include, sources[polled]
    assert get_template(include.group(1)).template.source.count(polled.split(" ")[1]) >= 1


def test_the_bilans_live_region_is_in_the_elus_home(client_for, elu_ussel):
    html = client_for(elu_ussel).get("/").content.decode()
    assert re.search(
        r'<div aria-live="polite" class="pvd-job-status">\s*<section id="bilans"', html
    )


def test_the_documents_live_region_is_in_the_convention_page(
    client_for, cdp_ussel, ussel_la_courtine
):
    from conventions.models import Convention

    convention = Convention.objects.create(
        beneficiaire=ussel_la_courtine, type=Convention.Type.CADRE, titre="Convention-cadre"
    )
    html = client_for(cdp_ussel).get(f"/conventions/{convention.pk}/").content.decode()
    assert re.search(r'<div aria-live="polite" class="pvd-job-status">\s*<div id="documents"', html)


@pytest.mark.parametrize(
    "page, expected", [("9999", "last"), ("2", 2), ("abc", 1), ("-1", "last"), ("", 1)]
)
def test_a_page_beyond_the_end_shows_the_last_page(client_for, national, page, expected):
    CommuneFactory.create_batch(120, departement_id="36")  # three pages of 50 at least
    response = client_for(national).get(f"/communes/?page={page}")
    assert response.status_code == 200
    page_obj = response.context["page_obj"]
    assert page_obj.paginator.num_pages >= 3
    last = page_obj.paginator.num_pages
    assert page_obj.number == (last if expected == "last" else expected)


def _views(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "view_class", None)
            if view_class is not None:
                yield str(pattern.pattern), view_class


def test_every_paginated_list_shows_the_last_page_rather_than_a_404():
    paginated = [
        (route, view)
        for route, view in _views(get_resolver().url_patterns)
        if issubclass(view, MultipleObjectMixin) and view.paginate_by
    ]
    assert len(paginated) >= 10
    missing = [route for route, view in paginated if not issubclass(view, LastPageMixin)]
    assert not missing, missing
