"""The dashboards are cached until what they read changes (tableaux/cache.py), per
perimeter: a change shows at once, another territory's figures never show, and the reader's
reminders are their own, about the beneficiaries they follow (rappels/prochains.py)."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from actions.models import FicheAction
from conventions.models import Convention
from postes.models import Poste
from pvd.french import date_heure_longue, date_longue
from rappels.models import Categorie, Rappel
from tableaux import lecture
from tableaux.cache import renew_everything
from tests.actions.test_plan_readmodel import make_fiche, text
from tests.conftest import count_queries
from tests.postes.conftest import make_poste, occupe
from tests.tableaux.test_dashboards import fill

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fragment_cache(production_caches):
    """Page fragments cached as in production (tests/conftest.py)."""


@pytest.fixture
def plans(ussel_la_courtine, le_blanc):
    fill(ussel_la_courtine, 5, "1", "111")
    fill(le_blanc, 5, "2", "99999")
    return ussel_la_courtine, le_blanc


def home(client) -> str:
    response = client.get(reverse("portail:home"))
    assert response.status_code == 200
    return text(response.content.decode())


# « Où en est ma ville ? » ------------------------------------------------------------------


def test_a_second_visit_is_served_from_the_cache(client_for, elu_ussel, plans):
    client = client_for(elu_ussel)
    first = home(client)
    warm = count_queries(lambda: client.get(reverse("portail:home")))
    from django.core.cache import caches

    caches["template_fragments"].clear()
    cold = count_queries(lambda: client.get(reverse("portail:home")))
    assert warm <= cold - 6  # the dashboard's own six queries: none run
    assert home(client) == first
    assert "Chiffres au" in first


def test_a_renewed_version_whose_figures_did_not_move_is_not_rendered_again(
    client_for, elu_ussel, plans, monkeypatch, time_machine
):
    """A new version (here every territory's) sends the dashboard cold: its rows are read
    again, but the same rows are not rendered again (tableaux/dashboards.py
    ``ville_contenu_key``); « Chiffres au » still says when they were read."""
    first_read = timezone.make_aware(datetime(2026, 3, 2, 10, 0))
    time_machine.move_to(first_read, tick=False)
    client = client_for(elu_ussel)
    first = home(client)
    assert f"Chiffres au {date_heure_longue(first_read)}" in first

    read_again = first_read + timedelta(minutes=30)
    time_machine.move_to(read_again, tick=False)
    renew_everything()

    def not_built_again(*args, **kwargs):
        raise AssertionError("the dashboard was built again from the same rows")

    monkeypatch.setattr(lecture, "ville", not_built_again)
    cold = count_queries(lambda: client.get(reverse("portail:home")))
    again = home(client)
    assert again == first.replace(date_heure_longue(first_read), date_heure_longue(read_again))
    warm = count_queries(lambda: client.get(reverse("portail:home")))
    assert warm <= cold - 6  # the rows were read again (in one round trip)


def test_an_edit_the_dashboard_does_not_show_does_not_render_it_again(
    client_for, elu_ussel, plans, monkeypatch
):
    """A fiche's description edited: its beneficiary's version is renewed and the rows read
    again, but they hold only what the dashboard shows (no last-update time), so the same
    rendering is served."""
    ussel, _ = plans
    client = client_for(elu_ussel)
    first = home(client)
    fiche = FicheAction.objects.filter(beneficiaire=ussel).order_by("pk").first()
    fiche.description = "Une description que le tableau de bord ne montre pas"
    fiche.save()

    def not_built_again(*args, **kwargs):
        raise AssertionError("the dashboard was built again from the same rows")

    monkeypatch.setattr(lecture, "ville", not_built_again)
    assert home(client) == first


def test_every_change_to_the_plan_the_conventions_or_the_posts_shows_at_once(
    client_for, elu_ussel, plans
):
    ussel, _ = plans
    client = client_for(elu_ussel)
    assert "Fiches en retard (1)" in home(client)

    fiche = FicheAction.objects.get(beneficiaire=ussel, reference="1.0")
    fiche.titre = "Halle en retard"
    fiche.date_fin_prevue = date(2020, 1, 1)
    fiche.maturite = FicheAction.Maturite.ENGAGEE
    fiche.save()
    content = home(client)
    assert "Fiches en retard (2)" in content and "Halle en retard" in content

    ligne = fiche.financements.get(financeur__nom="DETR")
    ligne.montant = Decimal("1000")
    ligne.save()
    assert "1 333 € Notifié" in home(client)  # 3 × 111 + 1 000, 1.4 abandoned

    Convention.objects.create(
        beneficiaire=ussel,
        type=Convention.Type.CADRE,
        titre="Convention-cadre",
        statut=Convention.Statut.SIGNEE,
        date_signature=date(2024, 3, 5),
    )
    assert "Convention-cadre signée le 5 mars 2024" in home(client)

    poste = make_poste(ussel, etat=Poste.Etat.VACANT, vacant_depuis=date(2025, 2, 1))
    assert "Poste de chef de projet vacant depuis le 1er février 2025" in home(client)
    poste.etat = Poste.Etat.POURVU
    poste.save()
    assert "Poste de chef de projet vacant" not in home(client)


def test_another_territory_is_never_served_from_the_cache(client_for, national, elu_ussel, plans):
    ussel, le_blanc = plans
    reader = client_for(national)
    blanc = reader.get(reverse("tableaux:ville", args=[le_blanc.pk])).content.decode()
    assert "399 996 € Notifié" in text(blanc)  # 2.4 abandoned
    content = home(client_for(elu_ussel))
    assert "Ussel – La Courtine" in content and "444 € Notifié" in content
    assert "399 996" not in content and "Le Blanc" not in content


def test_an_editor_and_a_reader_get_their_own_dashboard(client_for, cdp_ussel, elu_ussel, plans):
    ussel, _ = plans
    FicheAction.objects.filter(reference="1.3").update(
        updated_at=timezone.now() - timedelta(days=200)
    )
    assert "Sans mise à jour depuis 3 mois" in home(client_for(cdp_ussel))
    content = home(client_for(elu_ussel))
    assert "Sans mise à jour depuis 3 mois" not in content
    assert "Ajouter une fiche" not in content


# The préfecture ---------------------------------------------------------------------------


def test_each_prefecture_gets_its_own_table(client_for, prefecture_19, prefecture_36, plans):
    assert "Ussel – La Courtine" in home(client_for(prefecture_19))
    content = home(client_for(prefecture_36))
    assert "Le Blanc" in content and "Ussel – La Courtine" not in content


def test_a_filtered_table_is_not_the_cached_plain_one(client_for, prefecture_19, plans):
    client = client_for(prefecture_19)
    assert "Ussel – La Courtine" in home(client)
    response = client.get(reverse("portail:home"), {"q": "introuvable"})
    content = text(response.content.decode())
    assert "Aucun bénéficiaire ne correspond à ces critères." in content
    assert "Ussel – La Courtine" in home(client)


def test_a_change_to_a_plan_shows_in_the_prefecture_table(client_for, prefecture_19, plans):
    ussel, _ = plans
    client = client_for(prefecture_19)
    assert "19 – Corrèze 2 4 1 1" in home(client)
    make_fiche(ussel, "9.1", maturite=FicheAction.Maturite.LIVREE)
    assert "19 – Corrèze 2 5 2 1" in home(client)


# The reader's reminders -------------------------------------------------------------------


def rappel(user, beneficiaire, message, **fields) -> Rappel:
    return Rappel.objects.create(
        regle=fields.pop("regle", "fiche_en_retard"),
        categorie=Categorie.PLANS,
        objet=fields.pop("objet", message[:50]),
        echeance=fields.pop("echeance", timezone.localdate()),
        destinataire=user,
        beneficiaire=beneficiaire,
        message=message,
        lien=fields.pop("lien", reverse("actions:plan", args=[beneficiaire.pk])),
        **fields,
    )


def test_elu_sees_their_own_reminders_about_their_town_only(
    client_for, elu_ussel, cdp_ussel, ussel_la_courtine, le_blanc
):
    rappel(elu_ussel, ussel_la_courtine, "Ussel : la fiche <b>Halle</b> est en retard.")
    rappel(elu_ussel, ussel_la_courtine, "Ussel : déjà lu.", lue_le=timezone.now())
    rappel(cdp_ussel, ussel_la_courtine, "Ussel : rappel du chef de projet.")
    rappel(elu_ussel, le_blanc, "Le Blanc : convention-cadre attendue.")  # a former role
    response = client_for(elu_ussel).get(reverse("portail:home"))
    html = response.content.decode()
    content = text(html)
    assert "Vos rappels" in content
    assert "Ussel : la fiche <b>Halle</b> est en retard." in content  # escaped, shown as text
    assert "<b>Halle</b>" not in html
    assert f'href="{reverse("actions:plan", args=[ussel_la_courtine.pk])}"' in html
    assert "déjà lu" not in content
    assert "rappel du chef de projet" not in content
    assert "Le Blanc" not in content
    assert reverse("rappels:list") in html


def test_chef_de_projet_sees_their_reminders_on_their_home(
    client_for, cdp_ussel, ussel_la_courtine
):
    rappel(cdp_ussel, ussel_la_courtine, "Ussel : le plan n’a pas été mis à jour depuis 3 mois.")
    content = home(client_for(cdp_ussel))
    assert "Vos rappels" in content
    assert "le plan n’a pas été mis à jour depuis 3 mois" in content


def test_a_reminder_never_links_outside_the_portal(client_for, elu_ussel, ussel_la_courtine):
    rappel(elu_ussel, ussel_la_courtine, "Ussel : rappel.", lien="https://example.com/piege")
    html = client_for(elu_ussel).get(reverse("portail:home")).content.decode()
    assert "Ussel : rappel." in html and "example.com" not in html


def test_no_reminder_says_so(client_for, elu_ussel, ussel_la_courtine):
    assert "Aucun rappel non lu." in home(client_for(elu_ussel))


def test_elu_sees_the_next_deadlines_of_their_town_only(
    client_for, elu_ussel, ussel_la_courtine, le_blanc
):
    today = timezone.localdate()
    for beneficiaire, fin in ((ussel_la_courtine, 40), (le_blanc, 50)):
        Convention.objects.create(
            beneficiaire=beneficiaire,
            type=Convention.Type.ADHESION,
            titre="Convention d'adhésion",
            statut=Convention.Statut.SIGNEE,
            date_signature=date(2021, 5, 1),
            date_fin=today + timedelta(days=fin),
        )
    Convention.objects.create(  # ends in a year: not yet a deadline
        beneficiaire=ussel_la_courtine,
        type=Convention.Type.CADRE,
        titre="Convention-cadre",
        statut=Convention.Statut.SIGNEE,
        date_signature=date(2022, 5, 1),
        date_fin=today + timedelta(days=400),
    )
    poste = make_poste(ussel_la_courtine, etat=Poste.Etat.POURVU)
    occupation = occupe(poste, date(2021, 9, 1), prenom="Léa", nom="Roux")
    occupation.date_fin_contrat = today + timedelta(days=30)
    occupation.save()
    content = home(client_for(elu_ussel))
    echeances = content.split("Prochaines échéances")[1].split("L’argent du plan")[0]
    fin = today + timedelta(days=40)
    assert f"Convention d'adhésion : prend fin le {date_longue(fin)}." in echeances
    assert "Convention-cadre PVD valant ORT : prend fin" not in echeances
    contrat = today + timedelta(days=30)
    assert f"Contrat du chef de projet (Léa Roux) : fin prévue le {date_longue(contrat)}." in (
        echeances
    )
    assert date_longue(today + timedelta(days=50)) not in content  # Le Blanc's convention


# The programme's figures -------------------------------------------------------------------


def test_france_figures_are_ready_before_the_first_national_reader(
    client_for, national, plans, settings
):
    from tableaux.tasks import refresh_programme

    settings.PROGRAMME_CACHE_TIMEOUT = 600
    client = client_for(national)
    client.get(reverse("rappels:list"))  # the header's unread count, then cached
    refresh_programme()
    ready = count_queries(lambda: client.get(reverse("portail:home")))
    from django.core.cache import cache

    cache.clear()
    client.get(reverse("rappels:list"))
    computed = count_queries(lambda: client.get(reverse("portail:home")))
    assert ready <= computed - 5  # none of France's figures read
    content = home(client)
    assert "Chiffres calculés le" in content
    assert "8 actions suivies (hors abandonnées), dont 2 en retard" in content
