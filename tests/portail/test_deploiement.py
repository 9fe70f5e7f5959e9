"""Issue 24, item 5: the national rollout from a spreadsheet — a simulation, applied all or
nothing, invitations sent once in batches, a tracker that resends."""

from __future__ import annotations

import csv
import io

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from communes.models import Beneficiaire, Commune
from portail import deploiement
from portail.deploiement import HEADER
from postes.models import Occupation, Poste
from pvd.integrity import JETON
from pvd.models import Deploiement, Invitation, Role, User

pytestmark = pytest.mark.django_db

URL = reverse("portail:deploiement")


def people() -> list[list[str]]:
    """50 people: a chef de projet per beneficiary, préfecture referents, an élu per commune."""
    rows = []
    for b in Beneficiaire.objects.actifs().order_by("pk"):
        commune = max(b.communes.all(), key=lambda c: c.population or 0)
        rows.append(
            ["Chef de projet", f"cdp-{b.pk}@exemple.fr", "Camille", f"Martin {b.pk}",
             "Cheffe de projet PVD", "", commune.code, commune.siren, "01/03/2021", "01/06/2021"]
        )  # fmt: skip
    for n in range(12 - 1):
        dep = ["19", "23", "36"][n % 3]
        rows.append(
            ["Préfecture", f"pref-{n}@exemple.gouv.fr", "Dominique", f"Durand {n}",
             "Sous-préfète", dep, "", "", "", ""]
        )  # fmt: skip
    # An existing account, matched by its address: a new role on it.
    rows.append(
        ["préfecture", "PREFECTURE-36@test.pvd.fr", "", "", "Référent", "23", "", "", "", ""]
    )
    for commune in Commune.objects.filter(membres__actif=True).order_by("code"):
        rows.append(
            ["Élu", f"maire-{commune.code}@exemple.fr", "Alex", f"Petit {commune.code}",
             "Maire", "", commune.code, "", "", ""]
        )  # fmt: skip
    return rows


def csv_file(rows, name="personnes.csv") -> SimpleUploadedFile:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return SimpleUploadedFile(name, buffer.getvalue().encode("utf-8"), "text/csv")


def snapshot() -> tuple:
    return (
        User.objects.count(),
        Role.objects.count(),
        Poste.objects.count(),
        Occupation.objects.count(),
        Invitation.objects.count(),
    )


def deposer(client, capture, upload) -> Deploiement:
    with capture(execute=True):
        response = client.post(URL, {"fichier": upload})
    objet = Deploiement.objects.filter(mode="simulation").order_by("-pk").first()
    assert response.status_code == 302, response.content.decode()
    assert response.url == reverse("portail:deploiement-detail", args=[objet.pk])
    objet.refresh_from_db()
    return objet


def appliquer(client, capture, objet) -> Deploiement:
    with capture(execute=True):
        response = client.post(reverse("portail:deploiement-appliquer", args=[objet.pk]))
    application = Deploiement.objects.get(simulation=objet)
    assert response.url == reverse("portail:deploiement-detail", args=[application.pk])
    return application


@pytest.fixture
def batch(settings):
    settings.INVITATIONS_PAR_MINUTE = 20


def test_fifty_people_simulated_applied_and_invited_once(
    client_for, national, batch, django_capture_on_commit_callbacks
):
    rows = people()
    assert len(rows) == 50
    client = client_for(national)
    before = snapshot()

    objet = deposer(client, django_capture_on_commit_callbacks, csv_file(rows))

    assert objet.statut == Deploiement.Statut.PRET, objet.erreur
    assert not objet.refuse, objet.rapport
    assert objet.rapport.startswith("Simulation : rien n'a été enregistré.")
    assert "Comptes créés : 49" in objet.rapport
    assert "Comptes existants retrouvés par adresse électronique : 1" in objet.rapport
    assert "Lignes refusées : 0" in objet.rapport
    assert "prefecture-36@test.pvd.fr : retrouvé" in objet.rapport
    assert snapshot() == before  # a simulation writes nothing
    page = client.get(reverse("portail:deploiement-detail", args=[objet.pk])).content.decode()
    assert "Appliquer le tableau" in page and "Comptes créés : 49" in page

    application = appliquer(client, django_capture_on_commit_callbacks, objet)
    application.refresh_from_db()
    assert application.statut == Deploiement.Statut.PRET, application.erreur
    assert application.rapport.startswith("Tableau appliqué.")
    assert User.objects.count() == before[0] + 49
    assert Invitation.objects.count() == 50
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    occupation = Occupation.objects.get(email=f"cdp-{ussel.pk}@exemple.fr")
    assert occupation.poste.etat == Poste.Etat.POURVU
    assert list(occupation.poste.beneficiaires.all()) == [ussel]
    assert list(occupation.role.beneficiaires.all()) == [ussel]
    assert occupation.role.kind == Role.Kind.CHEF_PROJET
    matched = User.objects.get(email="prefecture-36@test.pvd.fr")
    assert matched.roles.filter(kind=Role.Kind.PREFECTURE, departements="23").exists()
    assert not User.objects.get(email="pref-0@exemple.gouv.fr").has_usable_password()

    # In batches: 20 went out right after the application, the beat sends the rest.
    assert len(mail.outbox) == 20
    assert deploiement.envoyer_invitations() == 20
    assert deploiement.envoyer_invitations() == 10
    assert len(mail.outbox) == 50
    assert sorted(m.to[0] for m in mail.outbox) == sorted({m.to[0] for m in mail.outbox})
    assert deploiement.envoyer_invitations() == 0  # nothing sent twice
    assert len(mail.outbox) == 50
    new = next(m for m in mail.outbox if m.to == ["pref-0@exemple.gouv.fr"])
    assert "choisissez votre mot de passe" in new.body and "/password/reset/key/" in new.body
    assert "Préfecture" in new.body
    again = next(m for m in mail.outbox if m.to == ["prefecture-36@test.pvd.fr"])
    assert "Vous avez déjà un compte" in again.body

    # Applied once: a second confirmation changes nothing.
    response = client.post(reverse("portail:deploiement-appliquer", args=[objet.pk]), follow=True)
    assert "déjà appliqué" in response.content.decode()
    assert Deploiement.objects.filter(mode="application").count() == 1
    assert Invitation.objects.count() == 50


def test_the_same_file_again_has_nothing_to_do(
    client_for, national, batch, django_capture_on_commit_callbacks
):
    rows = people()[:3] + people()[-2:]
    client = client_for(national)
    capture = django_capture_on_commit_callbacks
    appliquer(client, capture, deposer(client, capture, csv_file(rows)))
    before = snapshot()

    second = deposer(client, capture, csv_file(rows))

    assert "Déjà en place (rien à faire) : 5" in second.rapport
    assert snapshot() == before


def test_a_bad_row_refuses_the_whole_file(client_for, national, django_capture_on_commit_callbacks):
    rows = people()[:10]
    rows.append(["Préfecture", "pref-x@exemple.gouv.fr", "Zoé", "Faux", "", "99", "", "", "", ""])
    rows.append(["Élu", "maire-x@exemple.fr", "Yann", "Sans", "Maire", "", "99999", "", "", ""])
    rows.append(["Directeur", "d@exemple.fr", "A", "B", "", "", "", "", "", ""])
    client = client_for(national)
    before = snapshot()

    objet = deposer(client, django_capture_on_commit_callbacks, csv_file(rows))

    assert objet.refuse
    text = client.get(reverse("portail:deploiement-detail", args=[objet.pk])).content.decode()
    assert "Tableau refusé : rien n’a été enregistré" in text
    assert "Ligne 12 – pref-x@exemple.gouv.fr : refusé" in objet.rapport
    assert "Ligne 13 – maire-x@exemple.fr : refusé (aucun bénéficiaire PVD actif" in objet.rapport
    assert "type « Directeur » inconnu" in objet.rapport
    assert "Le fichier est refusé : aucune ligne n'est enregistrée" in objet.rapport
    assert "Appliquer le tableau" not in text
    client.post(reverse("portail:deploiement-appliquer", args=[objet.pk]))
    assert not Deploiement.objects.filter(mode="application").exists()
    assert snapshot() == before


def test_a_file_that_is_not_a_table_is_refused_in_french(client_for, national):
    client = client_for(national)
    upload = SimpleUploadedFile("personnes.csv", "Type;Nom\n".encode("utf-16"))
    response = client.post(URL, {"fichier": upload})
    assert "Ce fichier n&#x27;est ni un classeur .xlsx" in response.content.decode()

    response = client.post(URL, {"fichier": csv_file([], name="vide.csv")})
    assert "aucune ligne après l’en-tête" in response.content.decode().replace("&#x27;", "’")
    header = SimpleUploadedFile("p.csv", b"Nom;Prenom\nA;B\n")
    response = client.post(URL, {"fichier": header})
    assert "Colonnes obligatoires absentes" in response.content.decode()
    assert not Deploiement.objects.exists()


def test_the_template_lists_the_columns(client_for, national):
    response = client_for(national).get(reverse("portail:deploiement-modele", args=["xlsx"]))
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert [c.value for c in next(sheet.iter_rows())] == HEADER
    response = client_for(national).get(reverse("portail:deploiement-modele", args=["csv"]))
    first = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()[0]
    assert next(csv.reader([first], delimiter=";")) == HEADER


def test_the_tracker_shows_activation_and_resends_once(
    client_for, national, batch, django_capture_on_commit_callbacks
):
    client = client_for(national)
    capture = django_capture_on_commit_callbacks
    appliquer(client, capture, deposer(client, capture, csv_file(people()[-3:])))
    assert len(mail.outbox) == 3
    active = Invitation.objects.select_related("user").order_by("pk")[0].user
    active.set_password("un mot de passe choisi")
    active.save()

    page = client.get(reverse("portail:invitations")).content.decode()
    assert "1 compte activé sur 3 invitations" in page
    page = client.get(reverse("portail:invitations") + "?etat=non_activees").content.decode()
    assert active.email not in page

    other = Invitation.objects.exclude(user=active).order_by("pk")[0]
    url = reverse("portail:invitation-renvoyer", args=[other.pk])
    token = "1f0c9f5e-8f77-4d8a-9a36-0d0d6b0b1b11"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {JETON: token})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {JETON: token}, follow=True)  # a double click
    assert "déjà renvoyée" in response.content.decode()
    assert len(mail.outbox) == 4
    assert mail.outbox[-1].to == [other.user.email]
    other.refresh_from_db()
    assert other.envois == 2


def test_a_failed_sending_is_retried_then_given_up(national, batch, monkeypatch, settings):
    user = User.objects.create_user(email="x@exemple.fr")
    invitation = Invitation.objects.create(user=user)

    def smtp_down(*args, **kwargs):
        raise OSError("SMTP injoignable")

    monkeypatch.setattr(deploiement, "send_mail", smtp_down)
    for _ in range(settings.INVITATIONS_TENTATIVES):
        assert deploiement.envoyer_invitations() == 0
    invitation.refresh_from_db()
    assert invitation.envoyee_le is None
    assert invitation.tentatives == settings.INVITATIONS_TENTATIVES
    assert "SMTP injoignable" in invitation.erreur
    monkeypatch.undo()
    assert deploiement.envoyer_invitations() == 0  # given up: staff resend it by hand
    assert mail.outbox == []


@pytest.mark.parametrize("who", ["prefecture_36", "cdp_ussel", "elu_ussel", "partenaire"])
def test_only_national_staff_roll_out(client_for, who, request, national):
    objet = Deploiement.objects.create(
        nom_fichier="x.csv", source="deploiements/x.csv", statut="pret", requested_by=national
    )
    invitation = Invitation.objects.create(user=national)
    client = client_for(request.getfixturevalue(who))
    before = snapshot()
    for url in (
        URL,
        reverse("portail:deploiement-detail", args=[objet.pk]),
        reverse("portail:deploiement-modele", args=["csv"]),
        reverse("portail:invitations"),
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(URL, {"fichier": csv_file(people()[:2])}).status_code == 403
    for url in (
        reverse("portail:deploiement-appliquer", args=[objet.pk]),
        reverse("portail:invitation-renvoyer", args=[invitation.pk]),
    ):
        assert client.post(url).status_code == 403, url
    assert snapshot() == before
    assert Deploiement.objects.count() == 1


def test_an_excel_file_with_date_cells_is_read(
    client_for, national, django_capture_on_commit_callbacks
):
    from datetime import datetime

    from openpyxl import Workbook

    row = people()[0]
    row[8], row[9] = datetime(2021, 3, 1), datetime(2021, 6, 1)
    workbook = Workbook()
    workbook.active.append(HEADER)
    workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    upload = SimpleUploadedFile("personnes.xlsx", buffer.getvalue())

    objet = deposer(client_for(national), django_capture_on_commit_callbacks, upload)

    assert "Comptes créés : 1" in objet.rapport and not objet.refuse, objet.rapport
    assert objet.source.name.endswith(".xlsx")


def test_an_application_checks_the_rows_again_and_writes_nothing_if_one_fails(
    client_for, national, django_capture_on_commit_callbacks
):
    """The rules are checked on what is stored when the application runs, not on the
    simulation's report: a row that no longer passes refuses the whole file."""
    rows = people()[-2:] + [
        ["Préfecture", "prefecture-36@test.pvd.fr", "", "", "Référent", "23", "", "", "", ""]
    ]
    client = client_for(national)
    capture = django_capture_on_commit_callbacks
    objet = deposer(client, capture, csv_file(rows))
    assert not objet.refuse, objet.rapport
    User.objects.filter(email="prefecture-36@test.pvd.fr").update(is_active=False)
    before = snapshot()

    application = appliquer(client, capture, objet)

    application.refresh_from_db()
    assert application.statut == Deploiement.Statut.ECHEC
    assert application.erreur.startswith("Le tableau est refusé : la situation a changé")
    assert "le compte de cette adresse est désactivé" in application.erreur
    assert snapshot() == before
    assert mail.outbox == []
    page = client.get(reverse("portail:deploiement-detail", args=[application.pk]))
    assert "Rien n’a été enregistré." in page.content.decode()
