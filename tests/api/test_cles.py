import html

import pytest
from auditlog.models import LogEntry

from api.models import CleApi
from tests.conftest import cast_user


def test_national_staff_create_a_key_shown_once(client_for, national):
    client = client_for(national)
    partner = cast_user("partenaire@test.pvd.fr")
    form = client.get("/cles-api/nouvelle/").context["form"]
    data = {
        "organisation": "Banque des Territoires",
        "user": partner.pk,
        "jeton_envoi": form.initial["jeton_envoi"],
    }
    response = client.post("/cles-api/nouvelle/", data, follow=True)
    assert response.status_code == 200
    cle = CleApi.objects.get()
    assert response.redirect_chain == [(f"/cles-api/{cle.pk}/nouvelle-cle/", 302)]
    assert (cle.organisation, cle.user, cle.created_by) == (
        "Banque des Territoires",
        partner,
        national,
    )
    texte = response.context["texte"]
    assert texte in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert CleApi.lire(texte) == cle
    # Never again: a reload, a double click or the list show its prefix only.
    again = client.get(f"/cles-api/{cle.pk}/nouvelle-cle/").content.decode()
    assert texte not in again and "ne peut plus l’être" in again
    double = client.post("/cles-api/nouvelle/", data, follow=True)
    assert texte not in double.content.decode() and CleApi.objects.count() == 1
    listing = client.get("/cles-api/").content.decode()
    assert f"pvd_{cle.prefixe}_…" in listing
    assert texte not in listing
    assert LogEntry.objects.get_for_object(cle).filter(action=LogEntry.Action.CREATE).exists()


def test_a_key_needs_an_organisation_and_a_user_with_a_role(client_for, national, sans_role):
    client = client_for(national)
    response = client.post("/cles-api/nouvelle/", {"organisation": "", "user": sans_role.pk})
    assert response.status_code == 200
    assert "Ce champ est obligatoire." in response.content.decode()
    assert "Sélectionnez un choix valide" in response.content.decode()
    assert not CleApi.objects.exists()


def test_national_staff_revoke_a_key(client_for, national):
    cle, texte = CleApi.emettre(
        organisation="Anah", user=cast_user("partenaire@test.pvd.fr"), by=national
    )
    client = client_for(national)
    response = client.post(f"/cles-api/{cle.pk}/revoquer/", follow=True)
    assert "La clé d'Anah est révoquée." in html.unescape(response.content.decode())
    cle.refresh_from_db()
    revoked_at = cle.revoquee_le
    assert revoked_at is not None
    client.post(f"/cles-api/{cle.pk}/revoquer/")
    cle.refresh_from_db()
    assert cle.revoquee_le == revoked_at
    response = client.get("/api/v1/beneficiaires/", HTTP_AUTHORIZATION=f"Bearer {texte}")
    assert response.status_code == 401


@pytest.mark.parametrize("who", ["prefecture_36", "cdp_ussel", "partenaire"])
def test_only_national_staff_manage_keys(client_for, request, who, national):
    cle, _ = CleApi.emettre(organisation="Anah", user=national, by=national)
    client = client_for(request.getfixturevalue(who))
    assert client.get("/cles-api/").status_code == 403
    assert client.get("/cles-api/nouvelle/").status_code == 403
    assert client.get(f"/cles-api/{cle.pk}/nouvelle-cle/").status_code == 403
    assert client.post("/cles-api/nouvelle/", {"organisation": "X", "user": 1}).status_code == 403
    assert client.post(f"/cles-api/{cle.pk}/revoquer/").status_code == 403
    cle.refresh_from_db()
    assert cle.revoquee_le is None and CleApi.objects.count() == 1


def test_anonymous_is_sent_to_login(client, territoires):
    response = client.get("/cles-api/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
