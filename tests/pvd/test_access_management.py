import html

import pytest
from auditlog.models import LogEntry
from django.core import mail
from django.urls import reverse

from actions.models import Financeur
from pvd import policy
from pvd.models import Role, User

pytestmark = pytest.mark.django_db

READ_ONLY_OR_LOCAL = ["prefecture_36", "cdp_ussel", "elu_ussel", "partenaire", "sans_role"]


def test_national_lists_accounts(client_for, national, prefecture_36):
    response = client_for(national).get(reverse("portail:user-list"), {"q": "prefecture"})
    assert response.status_code == 200
    assert "prefecture-36@test.pvd.fr" in response.content.decode()


@pytest.mark.parametrize(
    "who, url_name",
    [
        (who, url_name)
        for who in READ_ONLY_OR_LOCAL
        for url_name in ["portail:user-list", "portail:user-create", "portail:audit-log"]
        # A préfecture reads the journal of its département (tests/pvd/test_history.py).
        if (who, url_name) != ("prefecture_36", "portail:audit-log")
    ],
)
def test_other_roles_get_403_on_access_pages(request, client_for, who, url_name):
    user = request.getfixturevalue(who)
    assert client_for(user).get(reverse(url_name)).status_code == 403


@pytest.mark.parametrize("who", READ_ONLY_OR_LOCAL)
def test_other_roles_cannot_remove_a_role(request, client_for, who, cdp_ussel):
    user = request.getfixturevalue(who)
    role = cdp_ussel.roles.get()
    response = client_for(user).post(reverse("portail:role-delete", args=[role.pk]))
    assert response.status_code == 403
    assert Role.objects.filter(pk=role.pk).exists()


@pytest.mark.parametrize("who", READ_ONLY_OR_LOCAL)
def test_other_roles_cannot_add_a_role(request, client_for, who, cdp_ussel):
    user = request.getfixturevalue(who)
    response = client_for(user).post(
        reverse("portail:role-create", args=[cdp_ussel.pk]), {"kind": "national"}
    )
    assert response.status_code == 403
    assert cdp_ussel.roles.count() == 1


def test_national_creates_an_account_which_gets_an_email(client_for, national):
    response = client_for(national).post(
        reverse("portail:user-create"),
        {
            "email": "Nouvelle.Agente@Correze.gouv.fr",
            "first_name": "Léa",
            "last_name": "Dupont",
            "is_active": "on",
        },
    )
    user = User.objects.get(email="nouvelle.agente@correze.gouv.fr")
    assert response.status_code == 302
    assert not user.has_usable_password()
    assert mail.outbox and mail.outbox[0].to == ["nouvelle.agente@correze.gouv.fr"]


def test_duplicate_email_is_refused(client_for, national, prefecture_36):
    response = client_for(national).post(
        reverse("portail:user-create"), {"email": "PREFECTURE-36@test.pvd.fr", "is_active": "on"}
    )
    assert response.status_code == 200
    assert "existe déjà" in response.content.decode()
    assert User.objects.filter(email__iexact="prefecture-36@test.pvd.fr").count() == 1


def test_national_gives_a_prefecture_role(client_for, national, sans_role):
    response = client_for(national).post(
        reverse("portail:role-create", args=[sans_role.pk]),
        {"kind": "prefecture", "departements": ["19"], "fonction": "Sous-préfète d'Ussel"},
    )
    assert response.status_code == 302
    role = sans_role.roles.get()
    assert list(role.departements.values_list("code", flat=True)) == ["19"]
    fresh = User.objects.get(pk=sans_role.pk)
    assert fresh.perimeter.departement_codes == {"19"}


def test_national_gives_a_chef_de_projet_role_by_insee_codes(client_for, national, sans_role):
    response = client_for(national).post(
        reverse("portail:role-create", args=[sans_role.pk]),
        {"kind": "chef_projet", "commune_codes": "19028, 19148"},
    )
    assert response.status_code == 302
    assert set(sans_role.roles.get().communes.values_list("code", flat=True)) == {"19028", "19148"}


def test_national_points_a_partner_at_the_funders_it_follows(client_for, national, sans_role):
    anah, bdt = (Financeur.objects.get(nom=nom) for nom in ("Anah", "Banque des Territoires"))
    client = client_for(national)
    response = client.post(
        reverse("portail:role-create", args=[sans_role.pk]),
        {"kind": "partenaire", "organisation": "Agence X", "financeurs": [anah.pk, bdt.pk]},
    )
    assert response.status_code == 302
    assert [f.nom for f in policy.partner_funders(sans_role)] == ["Anah", "Banque des Territoires"]
    # Another kind of role follows no funder, whatever was ticked.
    client.post(
        reverse("portail:role-create", args=[sans_role.pk]),
        {"kind": "prefecture", "departements": ["19"], "financeurs": [anah.pk]},
    )
    assert not sans_role.roles.get(kind=Role.Kind.PREFECTURE).financeurs.exists()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"kind": "prefecture"}, "départements"),
        ({"kind": "chef_projet", "commune_codes": "19275, 99999"}, "Codes INSEE inconnus : 99999"),
        ({"kind": "elu", "commune_codes": "19275", "epci_siren": "200066744"}, "l'un des deux"),
        ({"kind": "elu", "epci_siren": "123456789"}, "Aucun EPCI"),
        ({"kind": "partenaire"}, "organisme"),
        ({"kind": "national", "departements": ["36"]}, "pas de périmètre"),
    ],
)
def test_inconsistent_roles_are_refused_and_nothing_is_saved(
    client_for, national, sans_role, data, message
):
    response = client_for(national).post(reverse("portail:role-create", args=[sans_role.pk]), data)
    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    assert not sans_role.roles.exists()


def test_national_removes_a_role(client_for, national, cdp_ussel):
    role = cdp_ussel.roles.get()
    response = client_for(national).post(reverse("portail:role-delete", args=[role.pk]))
    assert response.status_code == 302
    assert not cdp_ussel.roles.exists()


def test_unknown_account_is_404(client_for, national):
    assert (
        client_for(national).get(reverse("portail:user-detail", args=[999999])).status_code == 404
    )


def test_changes_are_in_the_audit_trail_with_their_author(client_for, national, sans_role):
    client = client_for(national)
    client.post(
        reverse("portail:role-create", args=[sans_role.pk]),
        {"kind": "prefecture", "departements": ["36"]},
    )
    role = sans_role.roles.get()
    entry = LogEntry.objects.get_for_object(role).get(action=LogEntry.Action.CREATE)
    assert entry.actor == national
    page = client.get(reverse("portail:audit-log")).content.decode()
    assert national.email in page


def test_commune_change_is_audited(territoires):
    from communes.models import Commune

    commune = Commune.objects.get(code="19275")
    commune.population = 9800
    commune.save()
    entry = LogEntry.objects.get_for_object(commune).latest("timestamp")
    assert entry.changes_dict["population"] == ["9736", "9800"]


def test_journal_names_related_objects_with_a_fixed_number_of_queries(client_for, national):
    from communes.models import Beneficiaire, Commune, Departement, MembreBeneficiaire
    from tests.conftest import count_queries
    from tests.factories import CommuneFactory, EPCIFactory

    client = client_for(national)
    creuse = Departement.objects.get(code="23")
    commune = Commune.objects.get(code="19275")
    commune.departement = creuse
    commune.save()  # a changed foreign key: named « Corrèze → Creuse » on the page
    client.get(reverse("portail:audit-log"))
    small = count_queries(lambda: client.get(reverse("portail:audit-log")))

    # Fifty entries whose foreign keys point at many different objects.
    for i in range(10):
        epci = EPCIFactory(nom=f"CC numéro {i} <script>")
        other = CommuneFactory(departement=creuse, epci=epci)
        beneficiaire = Beneficiaire.objects.create(nom=f"Duo {i}", departement=creuse, epci=epci)
        MembreBeneficiaire.objects.create(beneficiaire=beneficiaire, commune=other)
    large = count_queries(lambda: client.get(reverse("portail:audit-log")))

    assert large == small
    page = " ".join(client.get(reverse("portail:audit-log")).content.decode().split())
    assert "Département : Corrèze (19) → Creuse (23)" in page
    assert "CC numéro 9 &lt;script&gt;" in page
    assert "CC numéro 9 <script>" not in page


def test_journal_names_a_deleted_related_object_in_french(client_for, national):
    from communes.models import Beneficiaire, Commune, MembreBeneficiaire

    ussel = Commune.objects.get(code="19275")
    ephemere = Beneficiaire.objects.create(
        nom="Éphémère", departement=ussel.departement, epci=ussel.epci
    )
    MembreBeneficiaire.objects.create(beneficiaire=ephemere, commune=ussel, actif=False)
    ephemere_pk = ephemere.pk
    ephemere.delete()
    page = " ".join(client_for(national).get(reverse("portail:audit-log")).content.decode().split())
    assert f"Bénéficiaire : Bénéficiaire PVD supprimé, n° {ephemere_pk}" in page
    assert "Deleted" not in page
