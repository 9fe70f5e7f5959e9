import csv
import html
import io
from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from communes.models import Beneficiaire, Commune, DecisionStatut, Departement, MembreBeneficiaire
from tests.conftest import TODAY as FROZEN_TODAY
from tests.conftest import count_queries
from tests.factories import CommuneFactory, EPCIFactory
from tests.pdfs import clean_pdf

pytestmark = pytest.mark.django_db

LIST = reverse("communes:beneficiaire-list")
CREATE = reverse("communes:beneficiaire-create")
TODAY = FROZEN_TODAY.isoformat()
PDF = clean_pdf()


def noms(response) -> set[str]:
    return {b["nom"] for b in response.context["object_list"]}


@pytest.fixture
def issoudun(territoires):
    """An Indre commune outside the programme."""
    return CommuneFactory(
        code="36088",
        nom="Issoudun",
        departement=Departement.objects.get(code="36"),
        epci=EPCIFactory(siren="200071223", nom="CC du Pays d'Issoudun"),
        population=11500,
    )


# Who sees what ---------------------------------------------------------------------------


def test_prefecture_lists_its_departement(client_for, prefecture_36):
    found = noms(client_for(prefecture_36).get(LIST))
    assert len(found) == 16
    assert "Le Blanc" in found
    assert "Ussel – La Courtine" not in found


def test_cross_departement_beneficiary_is_seen_from_both_sides(client_for, prefecture_19):
    found = noms(client_for(prefecture_19).get(LIST))
    assert found == {"Ussel – La Courtine", "Bort-les-Orgues – Neuvic"}


def test_chef_de_projet_and_elu_see_their_own(client_for, cdp_ussel, elu_ussel):
    assert noms(client_for(cdp_ussel).get(LIST)) == {"Ussel – La Courtine"}
    assert noms(client_for(elu_ussel).get(LIST)) == {"Ussel – La Courtine"}


def test_list_filters_are_kept_in_the_url(client_for, national):
    response = client_for(national).get(LIST, {"departement": "19", "statut": "laureat"})
    assert noms(response) == {"Ussel – La Courtine", "Bort-les-Orgues – Neuvic"}
    response = client_for(national).get(LIST, {"region": "24", "population_min": "6000"})
    assert noms(response) == {"Déols", "Le Blanc"}
    response = client_for(national).get(LIST, {"q": "courtine"})
    assert noms(response) == {"Ussel – La Courtine"}


@pytest.mark.parametrize("who", ["prefecture_19", "cdp_ussel", "elu_ussel", "sans_role"])
def test_other_territory_gets_404(request, client_for, le_blanc, who):
    client = client_for(request.getfixturevalue(who))
    url = reverse("communes:beneficiaire-detail", args=[le_blanc.pk])
    assert client.get(url).status_code == 404
    decision = reverse("communes:decision-create", args=[le_blanc.pk])
    response = client.post(decision, {"nouveau_statut": "retire", "motif": "x"})
    assert response.status_code == 404
    le_blanc.refresh_from_db()
    assert le_blanc.statut == Beneficiaire.Statut.LAUREAT


@pytest.mark.parametrize("who", ["cdp_ussel", "elu_ussel", "partenaire"])
def test_read_only_roles_get_403_on_decisions(request, client_for, ussel_la_courtine, who):
    client = client_for(request.getfixturevalue(who))
    detail = client.get(reverse("communes:beneficiaire-detail", args=[ussel_la_courtine.pk]))
    assert detail.status_code == 200
    response = client.post(
        reverse("communes:decision-create", args=[ussel_la_courtine.pk]),
        {"nouveau_statut": "retire", "date_decision": "2024-01-01", "reference": "x", "motif": "x"},
    )
    assert response.status_code == 403
    ussel_la_courtine.refresh_from_db()
    assert ussel_la_courtine.statut == Beneficiaire.Statut.LAUREAT


@pytest.mark.parametrize("who", ["cdp_ussel", "elu_ussel", "partenaire"])
def test_read_only_roles_cannot_propose(request, client_for, who):
    client = client_for(request.getfixturevalue(who))
    assert client.get(CREATE).status_code == 403
    assert client.post(CREATE, {"commune_codes": "19028"}).status_code == 403


def test_detail_shows_communes_epci_ids_and_history(client_for, cdp_ussel, ussel_la_courtine):
    response = client_for(cdp_ussel).get(
        reverse("communes:beneficiaire-detail", args=[ussel_la_courtine.pk])
    )
    content = response.content.decode()
    for text in ("Ussel", "La Courtine", "CC Haute-Corrèze Communauté", "pvd-75-1923-10"):
        assert text in content
    assert "Liste des lauréats" in content


# Proposing a beneficiary --------------------------------------------------------------------


def test_prefecture_proposes_a_commune(client_for, prefecture_36, issoudun):
    response = client_for(prefecture_36).post(CREATE, {"commune_codes": "36088"})
    beneficiaire = Beneficiaire.objects.get(nom="Issoudun")
    assert response.status_code == 302
    assert beneficiaire.statut == Beneficiaire.Statut.CANDIDAT
    assert beneficiaire.epci_id == "200071223"
    assert beneficiaire.departement_id == "36"
    assert beneficiaire.decisions.get().decided_by == prefecture_36


def test_grouped_proposal_is_named_after_its_communes(client_for, national, territoires):
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    ussel.change_statut("retire", by=None, date_decision=date(2024, 1, 1), reference="test")
    response = client_for(national).post(CREATE, {"commune_codes": "23067 19275"})
    assert response.status_code == 302
    nouveau = Beneficiaire.objects.actifs().get(communes__code="19275")
    assert nouveau.nom == "Ussel – La Courtine"
    assert nouveau.departement_id == "19"


def assert_refused(response, message: str, before: int) -> None:
    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    assert Beneficiaire.objects.count() == before


def test_commune_already_in_the_programme_is_refused(client_for, prefecture_36):
    before = Beneficiaire.objects.count()
    response = client_for(prefecture_36).post(CREATE, {"commune_codes": "36018"})
    assert_refused(response, "Le Blanc fait déjà partie du bénéficiaire « Le Blanc »", before)


def test_commune_of_another_departement_is_refused(client_for, prefecture_36, issoudun):
    before = Beneficiaire.objects.count()
    CommuneFactory(code="19031", nom="Chamberet", departement_id="19")
    response = client_for(prefecture_36).post(CREATE, {"commune_codes": "36088, 19031"})
    assert_refused(response, "Chamberet (Corrèze (19)) n'est pas dans votre département", before)


def test_unknown_code_is_refused(client_for, prefecture_36):
    before = Beneficiaire.objects.count()
    response = client_for(prefecture_36).post(CREATE, {"commune_codes": "36999"})
    assert_refused(response, "Codes INSEE inconnus : 36999", before)


def test_communes_of_different_epci_need_confirmation_and_reason(
    client_for, prefecture_36, issoudun
):
    other = CommuneFactory(
        code="36100", nom="Mézières-en-Brenne", departement_id="36", population=1000
    )
    client = client_for(prefecture_36)
    before = Beneficiaire.objects.count()
    response = client.post(CREATE, {"commune_codes": "36088, 36100"})
    assert_refused(response, "pas au même EPCI", before)
    response = client.post(
        CREATE,
        {
            "commune_codes": "36088, 36100",
            "confirmer_epci_multiples": "on",
            "motif_epci_multiples": "Centralité partagée de part et d'autre de la limite d'EPCI",
        },
    )
    assert response.status_code == 302
    assert set(Beneficiaire.objects.get(communes=other).communes.all()) == {issoudun, other}


def test_large_commune_needs_a_justification(client_for, prefecture_36, issoudun):
    issoudun.population = 21000
    issoudun.save()
    before = Beneficiaire.objects.count()
    response = client_for(prefecture_36).post(CREATE, {"commune_codes": "36088"})
    assert_refused(response, "moins de 20 000 habitants", before)
    response = client_for(prefecture_36).post(
        CREATE, {"commune_codes": "36088", "justification_population": "Pôle de centralité"}
    )
    assert response.status_code == 302


# Decisions ------------------------------------------------------------------------------------


def decide(client, beneficiaire, **data):
    return client.post(reverse("communes:decision-create", args=[beneficiaire.pk]), data)


@pytest.fixture
def candidat(client_for, prefecture_36, issoudun):
    client_for(prefecture_36).post(CREATE, {"commune_codes": "36088"})
    return Beneficiaire.objects.get(nom="Issoudun")


@pytest.mark.usefixtures("today")
def test_prefecture_makes_a_candidate_laureat_with_the_signed_decision(
    client_for, prefecture_36, candidat
):
    response = decide(
        client_for(prefecture_36),
        candidat,
        nouveau_statut="laureat",
        date_decision=TODAY,
        reference="Arrêté préfectoral n° 2024-12",
        document=SimpleUploadedFile("arrete.pdf", PDF, content_type="application/pdf"),
    )
    assert response.status_code == 302
    candidat.refresh_from_db()
    assert candidat.statut == Beneficiaire.Statut.LAUREAT
    decision = candidat.decisions.first()
    assert decision.reference == "Arrêté préfectoral n° 2024-12"
    assert decision.decided_by == prefecture_36
    download = client_for(prefecture_36).get(
        reverse("communes:decision-document", args=[decision.pk])
    )
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"%PDF")


@pytest.mark.usefixtures("today")
def test_decision_document_is_404_for_another_territory(
    client_for, prefecture_36, prefecture_19, candidat
):
    decide(
        client_for(prefecture_36),
        candidat,
        nouveau_statut="laureat",
        date_decision=TODAY,
        reference="Arrêté",
        document=SimpleUploadedFile("arrete.pdf", PDF),
    )
    decision = candidat.decisions.first()
    url = reverse("communes:decision-document", args=[decision.pk])
    assert client_for(prefecture_19).get(url).status_code == 404


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"document": SimpleUploadedFile("faux.pdf", b"MZ\x90\x00 not a pdf")},
            "pas un PDF valide",
        ),
        ({"date_decision": (FROZEN_TODAY + timedelta(days=3)).isoformat()}, "futur"),
        ({"date_decision": "2019-01-01"}, "ne peut pas précéder la précédente"),
        ({"nouveau_statut": "non_retenu"}, "Indiquez le motif"),
        ({"nouveau_statut": "inconnu"}, "Sélectionnez un choix valide"),
        ({"reference": ""}, "Ce champ est obligatoire"),
    ],
)
@pytest.mark.usefixtures("today")
def test_bad_decisions_are_refused_and_change_nothing(
    client_for, prefecture_36, candidat, data, message
):
    payload = {"nouveau_statut": "laureat", "date_decision": TODAY, "reference": "Arrêté"}
    response = decide(client_for(prefecture_36), candidat, **{**payload, **data})
    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    candidat.refresh_from_db()
    assert candidat.statut == Beneficiaire.Statut.CANDIDAT
    assert candidat.decisions.count() == 1


@pytest.mark.usefixtures("today")
def test_huge_document_is_refused(client_for, prefecture_36, candidat):
    big = SimpleUploadedFile("gros.pdf", PDF[:-6] + b"0" * (21 * 1024 * 1024) + b"%%EOF\n")
    response = decide(
        client_for(prefecture_36),
        candidat,
        nouveau_statut="laureat",
        date_decision=TODAY,
        reference="Arrêté",
        document=big,
    )
    assert "la limite est de 20" in response.content.decode()
    assert DecisionStatut.objects.filter(beneficiaire=candidat).count() == 1


def test_withdrawal_frees_the_communes(client_for, prefecture_36, le_blanc):
    response = decide(
        client_for(prefecture_36),
        le_blanc,
        nouveau_statut="retire",
        date_decision="2025-06-30",
        reference="Courrier du maire du 12/06/2025",
        motif="La commune sort du programme.",
    )
    assert response.status_code == 302
    assert not MembreBeneficiaire.objects.filter(commune_id="36018", actif=True).exists()
    # The commune can be proposed again, in a new dossier.
    response = client_for(prefecture_36).post(CREATE, {"commune_codes": "36018"})
    assert response.status_code == 302
    assert Beneficiaire.objects.filter(communes__code="36018").count() == 2


def test_a_withdrawn_beneficiary_has_no_further_decision(client_for, national, le_blanc):
    le_blanc.change_statut("retire", by=None, date_decision=date(2025, 1, 1), reference="x")
    response = decide(
        client_for(national),
        le_blanc,
        nouveau_statut="laureat",
        date_decision="2025-02-01",
        reference="x",
    )
    assert response.status_code == 200
    le_blanc.refresh_from_db()
    assert le_blanc.statut == Beneficiaire.Statut.RETIRE


# Selection page --------------------------------------------------------------------------


def selection(code: str) -> str:
    return reverse("communes:selection", args=[code])


def test_selection_lists_small_communes_by_default(client_for, prefecture_36, issoudun):
    CommuneFactory(code="36044", nom="Châteauroux", departement_id="36", population=43000)
    response = client_for(prefecture_36).get(selection("36"))
    names = {c.nom for c in response.context["object_list"]}
    assert "Issoudun" in names and "Le Blanc" in names
    assert "Châteauroux" not in names
    response = client_for(prefecture_36).get(selection("36"), {"population_max": ""})
    assert "Châteauroux" in {c.nom for c in response.context["object_list"]}


def test_selection_filters_communes_outside_the_programme(client_for, prefecture_36, issoudun):
    response = client_for(prefecture_36).get(selection("36"), {"en_pvd": "non"})
    assert [c.nom for c in response.context["object_list"]] == ["Issoudun"]
    response = client_for(prefecture_36).get(selection("36"), {"en_pvd": "oui"})
    assert len(response.context["object_list"]) == 16


def test_selection_of_another_departement_is_404(client_for, prefecture_36):
    assert client_for(prefecture_36).get(selection("19")).status_code == 404


@pytest.mark.parametrize("who", ["cdp_ussel", "elu_ussel", "partenaire"])
def test_selection_is_403_for_other_roles(request, client_for, who):
    client = client_for(request.getfixturevalue(who))
    assert client.get(selection("19")).status_code == 403


def test_national_sees_every_selection_page(client_for, national):
    assert client_for(national).get(selection("36")).status_code == 200
    assert client_for(national).get(selection("23")).status_code == 200


# National picture and exports ------------------------------------------------------------------


def test_synthese_counts_per_departement_and_region(client_for, national):
    response = client_for(national).get(reverse("communes:synthese"))
    assert response.status_code == 200
    totals = response.context["totals"]
    assert totals["laureat"] == 18
    assert totals["nb_communes_pvd"] == 20
    regions = {r["region"].code: r for r in response.context["regions"]}
    assert regions["24"]["laureat"] == 16
    assert regions["75"]["nb_communes_pvd"] == 4
    departements = {d.code: d for r in regions.values() for d in r["departements"]}
    # La Courtine counts in the Creuse; its dossier is followed from the Corrèze.
    assert departements["23"].nb_communes_pvd == 1
    assert departements["23"].laureat == 0
    assert departements["19"].laureat == 2


def test_synthese_query_count_does_not_grow(client_for, national):
    client = client_for(national)
    client.get(reverse("communes:synthese"))
    small = count_queries(lambda: client.get(reverse("communes:synthese")))
    creuse = Departement.objects.get(code="23")
    for i in range(30):
        commune = CommuneFactory(departement=creuse)
        b = Beneficiaire.objects.create(nom=f"Test {i}", departement=creuse, epci=commune.epci)
        MembreBeneficiaire.objects.create(beneficiaire=b, commune=commune)
    response = client.get(reverse("communes:synthese"))
    assert count_queries(lambda: client.get(reverse("communes:synthese"))) == small
    assert response.context["totals"]["nb_communes_pvd"] == 50
    assert response.context["totals"]["candidat"] == 30


def test_member_communes_outside_the_perimeter_are_not_links(
    client_for, prefecture_19, ussel_la_courtine
):
    response = client_for(prefecture_19).get(
        reverse("communes:beneficiaire-detail", args=[ussel_la_courtine.pk])
    )
    content = response.content.decode()
    assert reverse("communes:detail", args=["19275"]) in content
    assert reverse("communes:detail", args=["23067"]) not in content
    assert "La Courtine" in content


@pytest.mark.parametrize("who", ["prefecture_36", "cdp_ussel", "elu_ussel"])
def test_synthese_is_403_for_local_roles(request, client_for, who):
    client = client_for(request.getfixturevalue(who))
    assert client.get(reverse("communes:synthese")).status_code == 403


def test_csv_export_with_chosen_columns_is_scoped(client_for, prefecture_19):
    response = client_for(prefecture_19).get(
        LIST, {"export": "csv", "colonnes": ["nom", "codes_insee", "population"]}
    )
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0] == ["Bénéficiaire", "Codes INSEE", "Population municipale"]
    assert sorted(rows[1:]) == [
        ["Bort-les-Orgues – Neuvic", "19028, 19148", "4325"],
        ["Ussel – La Courtine", "19275, 23067", "10505"],
    ]


def test_xlsx_export_follows_the_filters(client_for, national):
    response = client_for(national).get(LIST, {"export": "xlsx", "departement": "36"})
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = workbook.active
    assert sheet.max_row == 17
    assert sheet.cell(1, 1).value == "Bénéficiaire"


def test_list_query_count_does_not_grow(client_for, national):
    client = client_for(national)
    client.get(LIST)
    small = count_queries(lambda: client.get(LIST))
    dep = Departement.objects.get(code="23")
    for i in range(30):
        commune = CommuneFactory(departement=dep)
        b = Beneficiaire.objects.create(nom=f"Test {i}", departement=dep, epci=commune.epci)
        MembreBeneficiaire.objects.create(beneficiaire=b, commune=commune)
    large = count_queries(lambda: client.get(LIST))
    assert large == small


def test_selection_query_count_does_not_grow(client_for, prefecture_36):
    client = client_for(prefecture_36)
    client.get(selection("36"))
    small = count_queries(lambda: client.get(selection("36")))
    CommuneFactory.create_batch(30, departement=Departement.objects.get(code="36"), population=500)
    large = count_queries(lambda: client.get(selection("36")))
    assert large == small


def test_commune_page_shows_its_beneficiary(client_for, elu_ussel):
    content = client_for(elu_ussel).get(reverse("communes:detail", args=["19275"])).content
    assert "Ussel – La Courtine" in content.decode()
    assert Commune.objects.get(code="19275").beneficiaires.count() == 1
