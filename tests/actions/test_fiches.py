from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from auditlog.context import set_actor
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from actions.models import (
    FicheAction,
    Financeur,
    Indicateur,
    LigneFinancement,
    Mesure,
    PointAvancement,
    ensure_axes,
)
from tests.actions.test_plan import fiche, financeur, text
from tests.conftest import count_queries
from tests.pdfs import clean_pdf

pytestmark = pytest.mark.django_db

PDF = clean_pdf()


@pytest.fixture
def axes_ussel(ussel_la_courtine):
    ensure_axes(ussel_la_courtine)
    return ussel_la_courtine


@pytest.fixture
def fiche_ussel(axes_ussel):
    """Rénovation de la halle: 100 000 €, DSIL 40 000 € and Région 20 000 €."""
    return fiche(
        axes_ussel,
        4,
        "4.1",
        100000,
        [("DSIL", 40000, "notifie"), ("Région", 20000, "prevu")],
        titre="Rénovation de la halle",
    )


def management(prefix: str, total: int, initial: int = 0) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def new_fiche_data(beneficiaire, lignes=(), **fields) -> dict:
    """A new fiche as posted, with financing lines given as (funder, amount, status)."""
    data = {
        "reference": "1.1",
        "titre": "Réhabilitation de l'îlot Gambetta",
        "axe": beneficiaire.axes.get(numero=1).pk,
        "maturite": "maturation",
        "avancement": "etude",
        "priorite": "1",
        "nature": "investissement",
        "cout_total": "300000",
        "date_debut_prevue": "2025-01-01",
        "date_fin_prevue": "2027-06-30",
        **management("financements", len(lignes)),
    }
    for i, (nom, montant, statut) in enumerate(lignes):
        data[f"financements-{i}-financeur"] = financeur(nom).pk
        data[f"financements-{i}-montant"] = montant
        data[f"financements-{i}-statut"] = statut
    data.update(fields)
    return data


def form_data(response) -> dict:
    """What the browser would post back from the fiche form it was given."""
    data = {}
    forms = [response.context["form"], response.context["financements"].management_form]
    forms += list(response.context["financements"])
    for form in forms:
        for field in form:
            value = field.value()
            if value is True:
                data[field.html_name] = "on"
            elif value not in (None, False):
                data[field.html_name] = value
    return data


def create_url(beneficiaire) -> str:
    return reverse("actions:fiche-create", args=[beneficiaire.pk])


def update_url(fiche: FicheAction) -> str:
    return reverse("actions:fiche-update", args=[fiche.pk])


# Creating and editing -------------------------------------------------------------------------


def test_fiche_created_with_several_funders_at_once(client_for, cdp_ussel, axes_ussel):
    data = new_fiche_data(
        axes_ussel,
        [("DSIL", "120000", "sollicite"), ("Région", "60000", "prevu")],
        communes=["19275"],
    )
    response = client_for(cdp_ussel).post(create_url(axes_ussel), data)
    created = FicheAction.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("actions:fiche", args=[created.pk])
    assert created.beneficiaire == axes_ussel
    assert (created.version, created.updated_by) == (1, cdp_ussel)
    assert [c.code for c in created.communes.all()] == ["19275"]
    assert sorted((ligne.financeur.nom, ligne.montant) for ligne in created.financements.all()) == [
        ("DSIL", 120000),
        ("Région", 60000),
    ]


def test_new_fiche_form_offers_three_financing_rows_and_suggests_a_reference(
    client_for, cdp_ussel, fiche_ussel
):
    axe = fiche_ussel.axe
    response = client_for(cdp_ussel).get(create_url(fiche_ussel.beneficiaire), {"axe": axe.pk})
    assert len(response.context["financements"].forms) == 3
    form = response.context["form"]
    assert {k: v for k, v in form.initial.items() if k != "jeton_envoi"} == {
        "axe": axe,
        "reference": "4.2",
    }
    assert [str(a) for a in form.fields["axe"].queryset][0] == "1. Habitat"
    assert {c.code for c in form.fields["communes"].queryset} == {"19275", "23067"}
    row = response.context["financements"].forms[0]
    choices = [label for _, label in row.fields["financeur"].choices]
    assert choices[:3] == ["—", "DETR", "DSIL"]


def test_inactive_funders_are_not_offered_but_stay_on_their_lines(
    client_for, cdp_ussel, fiche_ussel
):
    Financeur.objects.filter(nom="Région").update(actif=False)
    client = client_for(cdp_ussel)
    new = client.get(create_url(fiche_ussel.beneficiaire)).context["financements"].forms[0]
    assert "Région" not in [label for _, label in new.fields["financeur"].choices]
    edit = client.get(update_url(fiche_ussel)).context["financements"].forms[0]
    assert "Région" in [label for _, label in edit.fields["financeur"].choices]


def test_update_bumps_the_version_even_for_financing_only(client_for, cdp_ussel, fiche_ussel):
    client = client_for(cdp_ussel)
    data = form_data(client.get(update_url(fiche_ussel)))
    data["financements-2-financeur"] = financeur("DETR").pk
    data["financements-2-montant"] = "15000"
    data["financements-2-statut"] = "sollicite"
    assert client.post(update_url(fiche_ussel), data).status_code == 302
    fiche_ussel.refresh_from_db()
    assert fiche_ussel.version == 2
    assert fiche_ussel.financements.count() == 3
    data = form_data(client.get(update_url(fiche_ussel)))
    data["financements-0-DELETE"] = "on"
    client.post(update_url(fiche_ussel), data)
    fiche_ussel.refresh_from_db()
    assert fiche_ussel.version == 3
    assert fiche_ussel.financements.count() == 2


def test_concurrent_edit_is_refused_and_keeps_the_input(
    client_for, cdp_ussel, national, fiche_ussel
):
    from django.test import Client

    national.first_name, national.last_name = "Bénédicte", "Arnaud"
    national.save()
    a, b = client_for(cdp_ussel), Client()
    b.force_login(national)
    form_a = form_data(a.get(update_url(fiche_ussel)))
    form_b = form_data(b.get(update_url(fiche_ussel)))
    assert form_a["version"] == form_b["version"] == 1

    form_b["titre"] = "Rénovation de la halle et de ses abords"
    form_b["financements-0-montant"] = "45000"
    assert b.post(update_url(fiche_ussel), form_b).status_code == 302

    form_a["titre"] = "Halle couverte : rénovation"
    form_a["cout_total"] = "130000"
    response = a.post(update_url(fiche_ussel), form_a)
    assert response.status_code == 200
    page = text(response)
    assert "Cette fiche a été modifiée entre-temps par Bénédicte Arnaud le " in page
    assert (
        "vos saisies sont conservées ci-dessous ; vérifiez la fiche puis enregistrez à nouveau."
        in page
    )
    assert "Titre : Rénovation de la halle et de ses abords" in page  # what B saved
    assert 'value="Halle couverte : rénovation"' in response.content.decode()
    fiche_ussel.refresh_from_db()
    assert fiche_ussel.titre == "Rénovation de la halle et de ses abords"
    assert fiche_ussel.cout_total == 100000
    assert fiche_ussel.financements.get(financeur__nom="DSIL").montant == 45000
    assert (fiche_ussel.version, fiche_ussel.updated_by) == (2, national)

    # Having checked, A saves again from the page they were given back.
    again = form_data(response)
    assert again["version"] == 2
    assert a.post(update_url(fiche_ussel), again).status_code == 302
    fiche_ussel.refresh_from_db()
    assert (fiche_ussel.titre, fiche_ussel.version) == ("Halle couverte : rénovation", 3)


def test_race_after_validation_is_caught_under_the_lock(cdp_ussel, national, fiche_ussel):
    """Someone saves between the form's checks and its save: the row lock sees it."""
    from actions.forms import FicheForm, FinancementFormSet

    data = {
        **new_fiche_data(fiche_ussel.beneficiaire, reference="4.1", titre="Par A"),
        "version": "1",
    }
    form = FicheForm(data, instance=fiche_ussel, beneficiaire=fiche_ussel.beneficiaire)
    financements = FinancementFormSet(data, instance=fiche_ussel)
    assert form.is_valid() and financements.is_valid()
    FicheAction.objects.filter(pk=fiche_ussel.pk).update(version=2, updated_by=national)
    assert form.save(financements=financements, user=cdp_ussel) is None
    assert "modifiée entre-temps" in form.non_field_errors()[0]
    assert FicheAction.objects.get(pk=fiche_ussel.pk).titre == "Rénovation de la halle"


# Bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"date_fin_prevue": "2024-12-31"}, "La fin ne peut pas précéder le début."),
        ({"cout_total": "-5"}, "Un montant ne peut pas être négatif."),
        ({"financements-0-montant": "-100"}, "Un montant ne peut pas être négatif."),
        ({"reference": "4.1"}, "Une fiche de ce plan porte déjà cette référence."),
        ({"financements-0-montant": ""}, "Ce champ est obligatoire."),
    ],
)
def test_bad_input_is_refused_and_nothing_saved(
    client_for, cdp_ussel, fiche_ussel, change, message
):
    data = new_fiche_data(fiche_ussel.beneficiaire, [("DSIL", "1000", "prevu")], **change)
    response = client_for(cdp_ussel).post(create_url(fiche_ussel.beneficiaire), data)
    assert response.status_code == 200
    assert message in text(response)
    assert "La fiche n’est pas enregistrée" in text(response)
    assert FicheAction.objects.count() == 1
    assert LigneFinancement.objects.count() == 2


def test_an_axis_of_another_plan_is_refused(client_for, national, fiche_ussel, le_blanc):
    ensure_axes(le_blanc)
    data = new_fiche_data(fiche_ussel.beneficiaire, axe=le_blanc.axes.get(numero=1).pk)
    response = client_for(national).post(create_url(fiche_ussel.beneficiaire), data)
    assert "Sélectionnez un choix valide" in text(response)
    assert FicheAction.objects.count() == 1


def test_a_commune_outside_the_beneficiary_is_refused(client_for, cdp_ussel, axes_ussel):
    data = new_fiche_data(axes_ussel, communes=["36018"])
    response = client_for(cdp_ussel).post(create_url(axes_ussel), data)
    assert "Sélectionnez un choix valide" in text(response)
    assert not FicheAction.objects.exists()


# Fiche page -----------------------------------------------------------------------------------


def test_fiche_page_shows_financing_beyond_the_cost(client_for, elu_ussel, fiche_ussel):
    LigneFinancement.objects.create(
        fiche=fiche_ussel, financeur=financeur("DETR"), montant=52000, statut="sollicite"
    )
    response = client_for(elu_ussel).get(reverse("actions:fiche", args=[fiche_ussel.pk]))
    page = text(response)
    assert "Le plan de financement dépasse le coût de 12 000 €." in page
    assert "Total des financements 112 000 € 112 %" in page
    assert "Modifier la fiche" not in page


def test_fiche_page_shows_what_remains_to_finance(client_for, cdp_ussel, fiche_ussel):
    page = text(client_for(cdp_ussel).get(reverse("actions:fiche", args=[fiche_ussel.pk])))
    assert "reste à financer : 40 000 €" in page
    assert "DSIL" in page and "40 %" in page
    assert "Modifier la fiche et son financement" in page
    assert "Journal des modifications" not in page


def test_national_staff_get_the_audit_link(client_for, national, fiche_ussel):
    response = client_for(national).get(reverse("actions:fiche", args=[fiche_ussel.pk]))
    assert response.context["audit_url"].startswith(reverse("portail:audit-log") + "?content_type=")
    assert client_for(national).get(response.context["audit_url"]).status_code == 200


def test_the_fiche_page_takes_as_many_queries_whatever_it_shows(client_for, cdp_ussel, fiche_ussel):
    """Its communes, financing lines, indicators with their last measure, progress notes and
    history: each read with the fiche or in one query of its own, the history naming what the
    page already read, so the count does not grow with them."""
    client = client_for(cdp_ussel)
    url = reverse("actions:fiche", args=[fiche_ussel.pk])
    client.get(url)
    few = count_queries(lambda: client.get(url))
    fiche_ussel.communes.set(fiche_ussel.beneficiaire.communes.all())
    for n in range(1, 4):
        indicateur = Indicateur.objects.create(
            fiche=fiche_ussel,
            type="realisation",
            libelle=f"Indicateur {n}",
            unite="m²",
            cible=100,
            frequence="annuelle",
        )
        Mesure.objects.create(indicateur=indicateur, date=date(2024, 1, 1), valeur=1)
        Mesure.objects.create(indicateur=indicateur, date=date(2025, n, 1), valeur=10 * n)
        PointAvancement.objects.create(fiche=fiche_ussel, texte=f"Point {n}", auteur=cdp_ussel)
        LigneFinancement.objects.create(
            fiche=fiche_ussel, financeur=financeur("Département"), montant=1000 * n
        )
    assert count_queries(lambda: client.get(url)) == few
    page = text(client.get(url))
    communes = ", ".join(c.nom for c in fiche_ussel.communes.order_by("nom", "code"))
    assert f"Communes concernées {communes} Secteur" in page
    assert "Indicateur 3 Réalisation 30 m² au 01/03/2025 100 m² 30 %" in page
    assert "reste à financer : 34 000 €" in page


def test_indicators_and_measures(client_for, cdp_ussel, fiche_ussel):
    client = client_for(cdp_ussel)
    url = reverse("actions:indicateurs", args=[fiche_ussel.pk])
    data = {
        **management("indicateurs", 1),
        "indicateurs-0-type": "realisation",
        "indicateurs-0-libelle": "Surface de halle rénovée",
        "indicateurs-0-unite": "m²",
        "indicateurs-0-cible": "800",
    }
    assert client.post(url, data).status_code == 302
    indicateur = Indicateur.objects.get()
    mesure_url = reverse("actions:mesure-create", args=[fiche_ussel.pk])
    for day, valeur in ((date(2025, 3, 1), "200"), (date(2025, 9, 1), "600")):
        client.post(
            mesure_url,
            {"mesure-indicateur": indicateur.pk, "mesure-date": day, "mesure-valeur": valeur},
        )
    assert Mesure.objects.count() == 2
    page = text(client.get(reverse("actions:fiche", args=[fiche_ussel.pk])))
    assert "Surface de halle rénovée Réalisation 600 m² au 01/09/2025 800 m² 75 %" in page


def test_a_measure_in_the_future_is_refused(client_for, cdp_ussel, fiche_ussel):
    indicateur = Indicateur.objects.create(
        fiche=fiche_ussel, type="resultat", libelle="Fréquentation", unite="visiteurs"
    )
    response = client_for(cdp_ussel).post(
        reverse("actions:mesure-create", args=[fiche_ussel.pk]),
        {"mesure-indicateur": indicateur.pk, "mesure-date": "2999-01-01", "mesure-valeur": "3"},
    )
    assert "Une mesure ne peut pas être datée dans le futur." in text(response)
    assert not Mesure.objects.exists()


# Progress journal -----------------------------------------------------------------------------


def test_progress_entry_with_a_new_status_updates_the_fiche(client_for, cdp_ussel, fiche_ussel):
    client = client_for(cdp_ussel)
    response = client.post(
        reverse("actions:point-create", args=[fiche_ussel.pk]),
        {
            "date": "2025-05-12",
            "texte": "Marché de travaux attribué ; démarrage du chantier en juin.",
            "nouvel_avancement": "operationnelle",
            "piece_jointe": SimpleUploadedFile("os.pdf", PDF, content_type="application/pdf"),
        },
    )
    assert response.status_code == 302
    point = PointAvancement.objects.get()
    assert (point.auteur, point.nouvel_avancement) == (cdp_ussel, "operationnelle")
    fiche_ussel.refresh_from_db()
    assert fiche_ussel.avancement == "operationnelle"
    assert (fiche_ussel.version, fiche_ussel.updated_by) == (2, cdp_ussel)
    page = text(client.get(reverse("actions:fiche", args=[fiche_ussel.pk])))
    assert "12/05/2025" in page and "Avancement : Opérationnelle" in page
    download = client.get(reverse("actions:piece-jointe", args=[point.pk]))
    assert b"".join(download.streaming_content) == PDF


def test_progress_entry_without_status_leaves_the_fiche(client_for, cdp_ussel, fiche_ussel):
    client_for(cdp_ussel).post(
        reverse("actions:point-create", args=[fiche_ussel.pk]),
        {"date": "2025-05-12", "texte": "Réunion avec l'architecte des bâtiments de France."},
    )
    fiche_ussel.refresh_from_db()
    assert (fiche_ussel.avancement, fiche_ussel.version) == ("non_commencee", 1)
    assert PointAvancement.objects.get().piece_jointe == ""


def test_a_fake_pdf_is_refused_and_nothing_stored(client_for, cdp_ussel, fiche_ussel):
    response = client_for(cdp_ussel).post(
        reverse("actions:point-create", args=[fiche_ussel.pk]),
        {
            "date": "2025-05-12",
            "texte": "Compte rendu joint.",
            "nouvel_avancement": "achevee",
            "piece_jointe": SimpleUploadedFile(
                "compte-rendu.pdf", b"GIF89a not a pdf", content_type="application/pdf"
            ),
        },
    )
    assert response.status_code == 200
    assert "Ce fichier n'est pas un PDF valide." in text(response)
    assert not PointAvancement.objects.exists()
    assert not default_storage.exists(f"actions/{fiche_ussel.pk}/compte-rendu.pdf")
    fiche_ussel.refresh_from_db()
    assert fiche_ussel.avancement == "non_commencee"


def test_attachment_of_another_territory_is_404(client_for, cdp_ussel, prefecture_36, fiche_ussel):
    point = PointAvancement.objects.create(
        fiche=fiche_ussel,
        texte="Délibération",
        auteur=cdp_ussel,
        piece_jointe=SimpleUploadedFile("d.pdf", PDF),
    )
    url = reverse("actions:piece-jointe", args=[point.pk])
    assert client_for(prefecture_36).get(url).status_code == 404


# Who sees and changes what ----------------------------------------------------------------------


def write_requests(fiche: FicheAction) -> list[tuple[str, str]]:
    return [
        ("get", create_url(fiche.beneficiaire)),
        ("post", create_url(fiche.beneficiaire)),
        ("get", update_url(fiche)),
        ("post", update_url(fiche)),
        ("get", reverse("actions:indicateurs", args=[fiche.pk])),
        ("post", reverse("actions:indicateurs", args=[fiche.pk])),
        ("post", reverse("actions:mesure-create", args=[fiche.pk])),
        ("get", reverse("actions:point-create", args=[fiche.pk])),
        ("post", reverse("actions:point-create", args=[fiche.pk])),
    ]


@pytest.mark.parametrize("who", ["cdp_ussel", "national"])
def test_editors(request, client_for, who, fiche_ussel):
    client = client_for(request.getfixturevalue(who))
    for method, url in write_requests(fiche_ussel):
        if method == "get":
            assert client.get(url).status_code == 200, url
    data = form_data(client.get(update_url(fiche_ussel)))
    data["titre"] = "Halle"
    assert client.post(update_url(fiche_ussel), data).status_code == 302
    fiche_ussel.refresh_from_db()
    assert fiche_ussel.titre == "Halle"


@pytest.mark.parametrize("who", ["elu_ussel", "elu_epci", "prefecture_19", "partenaire"])
def test_readers_get_403_on_changes(request, client_for, who, fiche_ussel):
    client = client_for(request.getfixturevalue(who))
    assert client.get(reverse("actions:fiche", args=[fiche_ussel.pk])).status_code == 200
    for method, url in write_requests(fiche_ussel):
        assert getattr(client, method)(url).status_code == 403, (method, url)
    response = client.post(
        update_url(fiche_ussel),
        {**new_fiche_data(fiche_ussel.beneficiaire, reference="4.1"), "version": "1"},
    )
    assert response.status_code == 403
    fiche_ussel.refresh_from_db()
    assert (fiche_ussel.titre, fiche_ussel.version) == ("Rénovation de la halle", 1)
    assert FicheAction.objects.count() == 1


@pytest.mark.parametrize("who", ["prefecture_36", "sans_role"])
def test_other_territory_gets_404(request, client_for, who, fiche_ussel):
    client = client_for(request.getfixturevalue(who))
    assert client.get(reverse("actions:fiche", args=[fiche_ussel.pk])).status_code == 404
    for method, url in write_requests(fiche_ussel):
        assert getattr(client, method)(url).status_code == 404, (method, url)


@pytest.mark.parametrize("pk", [0, 2**31, 2**63 - 1, 2**63, 10**23])
def test_an_id_no_fiche_has_is_a_404(client_for, national, fiche_ussel, pk):
    """Read through prepared queries (actions/fiche.py): an id beyond any row's, even beyond
    a bigint, finds nothing, as an ORM lookup would."""
    assert client_for(national).get(reverse("actions:fiche", args=[pk])).status_code == 404


def test_chef_de_projet_cannot_reach_another_plan(client_for, cdp_ussel, le_blanc):
    ensure_axes(le_blanc)
    other = fiche(le_blanc, 1, "1.1", 1000)
    client = client_for(cdp_ussel)
    assert client.get(reverse("actions:fiche", args=[other.pk])).status_code == 404
    assert client.get(update_url(other)).status_code == 404
    assert client.post(create_url(le_blanc), new_fiche_data(le_blanc)).status_code == 404
    assert FicheAction.objects.count() == 1


# Funders catalogue ------------------------------------------------------------------------------


def test_national_staff_manage_the_funders(client_for, national, fiche_ussel):
    client = client_for(national)
    response = client.get(reverse("actions:financeur-list"))
    counts = {f.nom: f.nb_lignes for f in response.context["object_list"]}
    assert [f.nom for f in response.context["object_list"]][:3] == ["DETR", "DSIL", "FNADT"]
    assert counts["DSIL"] == 1 and counts["DETR"] == 0
    client.post(
        reverse("actions:financeur-create"),
        {"nom": "Fonds Avenir Montagne", "description": "Ingénierie", "ordre": 17, "actif": "on"},
    )
    avenir = Financeur.objects.get(nom="Fonds Avenir Montagne")
    response = client.post(
        reverse("actions:financeur-create"), {"nom": "DSIL", "ordre": 1, "actif": "on"}
    )
    assert "Ce financeur figure déjà au catalogue." in text(response)
    client.post(
        reverse("actions:financeur-update", args=[avenir.pk]),
        {"nom": "Avenir Montagnes", "description": "Ingénierie", "ordre": 18},
    )
    avenir.refresh_from_db()
    assert (avenir.nom, avenir.actif) == ("Avenir Montagnes", False)


def test_a_funder_in_use_is_not_deleted(client_for, national, fiche_ussel):
    client = client_for(national)
    dsil = financeur("DSIL")
    response = client.post(reverse("actions:financeur-delete", args=[dsil.pk]), follow=True)
    assert "« DSIL » finance 1 ligne de plans d'action : il ne peut pas être supprimé." in text(
        response
    )
    assert Financeur.objects.filter(pk=dsil.pk).exists()
    detr = financeur("DETR")
    client.post(reverse("actions:financeur-delete", args=[detr.pk]))
    assert not Financeur.objects.filter(pk=detr.pk).exists()


@pytest.mark.parametrize("who", ["cdp_ussel", "prefecture_19", "partenaire"])
def test_only_national_staff_manage_funders(request, client_for, who, territoires):
    client = client_for(request.getfixturevalue(who))
    dsil = financeur("DSIL")
    assert client.get(reverse("actions:financeur-list")).status_code == 403
    assert client.get(reverse("actions:financeur-create")).status_code == 403
    assert client.post(reverse("actions:financeur-create"), {"nom": "X"}).status_code == 403
    assert client.get(reverse("actions:financeur-update", args=[dsil.pk])).status_code == 403
    assert client.post(reverse("actions:financeur-delete", args=[dsil.pk])).status_code == 403
    assert Financeur.objects.filter(pk=dsil.pk).exists()


# A funder's SIRET (the attributor of the open-data grants file) --------------------------------

# Made-up numbers (none is a real funder's): Luhn-valid, and of La Poste's form (SIREN
# 356000000, numbered outside Luhn: its digits add up to a multiple of 5).
SIRET_FICTIF = "12345678200010"
SIRET_FORME_LA_POSTE = "35600000012341"  # Luhn fails, digits add up to 20


@pytest.mark.parametrize(
    ("siret", "message"),
    [
        (SIRET_FICTIF, None),
        (SIRET_FORME_LA_POSTE, None),
        ("12345678200011", "Ce SIRET n'est pas valide : son dernier chiffre (clé de contrôle)"),
        ("35600000012342", "Ce SIRET n'est pas valide"),  # La Poste's form, sum 21
        ("1234567820001A", "Le SIRET compte 14 chiffres, sans lettre ni autre signe."),
        ("123456782", "Le SIRET compte 14 chiffres, sans lettre ni autre signe."),
    ],
)
def test_a_siret_is_checked_by_its_luhn_key(siret, message):
    from django.core.exceptions import ValidationError

    from pvd.bounds import siret_valide

    if message is None:
        siret_valide(siret)
        return
    with pytest.raises(ValidationError) as error:
        siret_valide(siret)
    assert error.value.messages[0].startswith(message)


def test_national_staff_enter_a_funders_siret(client_for, national, territoires):
    client = client_for(national)
    region = financeur("Région")
    url = reverse("actions:financeur-update", args=[region.pk])
    data = {"nom": "Région", "description": region.description, "ordre": region.ordre}
    response = client.post(url, {**data, "actif": "on", "siret": "12345678200011"})
    assert response.status_code == 200
    assert "Ce SIRET n'est pas valide : son dernier chiffre (clé de contrôle)" in text(response)
    region.refresh_from_db()
    assert region.siret == ""
    response = client.post(url, {**data, "actif": "on", "siret": SIRET_FICTIF})
    assert response.status_code == 302
    region.refresh_from_db()
    assert region.siret == SIRET_FICTIF
    assert SIRET_FICTIF in text(client.get(reverse("actions:financeur-list")))


def test_the_catalogue_shows_funders_whose_notified_lines_miss_a_siret(
    client_for, national, fiche_ussel
):
    page = text(client_for(national).get(reverse("actions:financeur-list")))
    assert "Manquant : 1 ligne notifiée non publiée" in page  # DSIL, no SIRET yet
    Financeur.objects.filter(nom="DSIL").update(siret=SIRET_FICTIF)
    page = text(client_for(national).get(reverse("actions:financeur-list")))
    assert "Manquant" not in page


def test_an_unknown_funder_is_a_404(client_for, national, territoires):
    client = client_for(national)
    assert client.get(reverse("actions:financeur-update", args=[999999])).status_code == 404
    assert client.post(reverse("actions:financeur-delete", args=[999999])).status_code == 404


def test_the_fiche_history_rows_cached_show_a_change_at_once(
    production_caches, client_for, cdp_ussel, fiche_ussel
):
    """Each row of the « Historique » is cached on what it shows (actions.views.history_rows):
    a new entry and an author renamed show at once, and the rows match the shared template's."""
    client = client_for(cdp_ussel)
    url = reverse("actions:fiche", args=[fiche_ussel.pk])
    response = client.post(
        reverse("actions:point-create", args=[fiche_ussel.pk]),
        {"date": "2025-03-01", "texte": "Visite du chantier"},
    )
    assert response.status_code == 302
    client.get(url)  # the message « enregistré » shown
    page = text(client.get(url))
    historique = page[page.index("Historique des modifications") :]
    assert "Visite du chantier" in historique
    assert cdp_ussel.get_full_name() in historique
    assert text(client.get(url)) == page  # served from the cache, the same

    cdp_ussel.first_name = "Mathilde"
    cdp_ussel.save()
    FicheAction.objects.filter(pk=fiche_ussel.pk).update(titre="Rénovation de la halle")
    fiche_ussel.refresh_from_db()
    fiche_ussel.titre = "Rénovation de la halle aux grains"
    fiche_ussel.save()
    historique = text(client.get(url))
    historique = historique[historique.index("Historique des modifications") :]
    assert "Mathilde" in historique
    assert "Rénovation de la halle → Rénovation de la halle aux grains" in historique


def test_the_fiche_body_is_rendered_once_per_content_and_rights(
    production_caches,
    client_for,
    cdp_ussel,
    elu_ussel,
    prefecture_36,
    fiche_ussel,
    today,
    time_machine,
):
    """The body of the page is cached on all it shows (actions/fiche.py ``Fiche.content``):
    asked again, it is not rendered again; a change shows at once, even one written without
    signals (an ``update()``: a funder renamed, a measure's value, the fiche's text); a
    reader who may not edit never gets the editor's body; the day makes a fiche late; another
    territory still gets a 404."""
    from django.test.signals import template_rendered

    from actions.views import FicheDetailView

    url = reverse("actions:fiche", args=[fiche_ussel.pk])
    indicateur = Indicateur.objects.create(
        fiche=fiche_ussel, type="realisation", libelle="Surface", unite="m²", cible=100
    )
    mesure = Mesure.objects.create(indicateur=indicateur, date=date(2025, 1, 1), valeur=40)
    rendered = []

    def count(sender, template, context, **kwargs):
        if template.name == FicheDetailView.body_template:
            rendered.append(context["can_edit"])

    template_rendered.connect(count)
    try:
        page = text(client_for(cdp_ussel).get(url))
        assert "Modifier la fiche et son financement" in page
        assert text(client_for(cdp_ussel).get(url)) == page
        assert rendered == [True]
        assert "Modifier la fiche" not in text(client_for(elu_ussel).get(url))
        assert text(client_for(cdp_ussel).get(url)) == page
        assert rendered == [True, False]

        Financeur.objects.filter(nom="DSIL").update(nom="DSIL (État)")
        Mesure.objects.filter(pk=mesure.pk).update(valeur=55)
        FicheAction.objects.filter(pk=fiche_ussel.pk).update(
            description="Une halle du XIXe siècle", date_fin_prevue=date(2026, 3, 17)
        )
        page = text(client_for(cdp_ussel).get(url))
        assert "DSIL (État)" in page and "Surface Réalisation 55 m²" in page
        assert "Une halle du XIXe siècle" in page and "En retard" not in page
        assert len(rendered) == 3
        time_machine.move_to(datetime(2026, 3, 18, 10, 0, tzinfo=ZoneInfo("Europe/Paris")))
        assert "En retard" in text(client_for(cdp_ussel).get(url))
        assert client_for(prefecture_36).get(url).status_code == 404
    finally:
        template_rendered.disconnect(count)


def fiche_with_a_history(fiche_ussel, cdp_ussel, national) -> None:
    """Entries of every kind a fiche's history shows, by two authors: the fiche, a financing
    line, an indicator and its measure, a progress note, changes pointing at a funder and an
    axe."""
    with set_actor(national):
        fiche_ussel.titre = "Rénovation de la halle aux grains"
        fiche_ussel.axe = fiche_ussel.beneficiaire.axes.get(numero=2)
        fiche_ussel.save()
        ligne = fiche_ussel.financements.first()
        ligne.financeur = financeur("Département")
        ligne.montant = 35000
        ligne.save()
    with set_actor(cdp_ussel):
        indicateur = Indicateur.objects.create(
            fiche=fiche_ussel, type="realisation", libelle="Surface", unite="m²", cible=100
        )
        Mesure.objects.create(indicateur=indicateur, date=date(2025, 1, 1), valeur=40)
        PointAvancement.objects.create(fiche=fiche_ussel, texte="Visite", auteur=national)


def test_the_fiche_page_takes_one_round_trip_for_its_rows(
    client_for, cdp_ussel, national, fiche_ussel, monkeypatch
):
    """The session, the reader, then the page's six queries sent together (actions/fiche.py,
    pvd/db.py ``ensemble``: one round trip, each statement counted): the fiche (its total and
    communes), its lines, the decisions that set them, its indicators, progress notes and
    history. The history names what it points at from what the page has read (the funders,
    the axe, the notes' authors); a former funder or axe it names costs one query per kind
    of object."""
    from actions import fiche as lecture

    client = client_for(cdp_ussel)
    url = reverse("actions:fiche", args=[fiche_ussel.pk])
    with set_actor(national):
        fiche_ussel.titre = "Rénovation de la halle aux grains"
        fiche_ussel.save()
        ligne = fiche_ussel.financements.first()
        ligne.montant = 35000
        ligne.save()
    with set_actor(cdp_ussel):
        indicateur = Indicateur.objects.create(
            fiche=fiche_ussel, type="realisation", libelle="Surface", unite="m²", cible=100
        )
        Mesure.objects.create(indicateur=indicateur, date=date(2025, 1, 1), valeur=40)
        PointAvancement.objects.create(fiche=fiche_ussel, texte="Visite", auteur=national)
    client.get(url)
    sent = []
    ensemble = lecture.ensemble
    monkeypatch.setattr(
        lecture, "ensemble", lambda *queries: sent.append(len(queries)) or ensemble(*queries)
    )
    assert count_queries(lambda: client.get(url)) == 2 + 6
    assert sent == [6]

    fiche_with_a_history(fiche_ussel, cdp_ussel, national)
    assert count_queries(lambda: client.get(url)) == 2 + 6 + 2


def test_the_fiche_history_shows_what_every_history_shows(
    production_caches, client_for, cdp_ussel, national, fiche_ussel
):
    """Rendered from plain values and cached row by row, the fiche's « Historique » is the one
    includes/historique.html shows for audit.history, the first time and from the cache."""
    from django.template.loader import render_to_string

    from pvd.audit import history

    fiche_with_a_history(fiche_ussel, cdp_ussel, national)
    client = client_for(cdp_ussel)
    url = reverse("actions:fiche", args=[fiche_ussel.pk])

    def historique(content: str) -> list[str]:
        body = content[content.index("<tbody>", content.index('id="historique-titre"')) :]
        return body[: body.index("</tbody>")].split()

    expected = render_to_string(
        "includes/historique.html",
        {
            "historique": history(
                fiche_ussel,
                fiche_ussel.financements.all(),
                fiche_ussel.indicateurs.all(),
                Mesure.objects.filter(indicateur__fiche=fiche_ussel),
                fiche_ussel.points.all(),
            )
        },
    )
    first = client.get(url).content.decode()
    assert historique(first) == historique(expected)
    assert "Département" in first and "Visite" in first and "Surface" in first
    assert historique(client.get(url).content.decode()) == historique(expected)


def test_a_hostile_title_is_escaped_in_the_body_served_from_the_cache(
    production_caches, client_for, cdp_ussel, fiche_ussel
):
    """The fiche's body is cached once rendered (autoescaped): the cached body serves the
    escaped title, never markup."""
    fiche_ussel.titre = '<img src=x onerror="alert(1)"> Halle'
    fiche_ussel.save()
    client = client_for(cdp_ussel)
    for _ in range(2):  # rendered, then from the cache
        html = client.get(reverse("actions:fiche", args=[fiche_ussel.pk])).content.decode()
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; Halle" in html
        assert "<img src=x" not in html
