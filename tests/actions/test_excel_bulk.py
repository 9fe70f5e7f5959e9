"""Issue 20, item 9: the Excel import writes a plan in bulk — a number of queries that does
not grow with the plan, every row still in the journal as written by the importer, and what
a save of the plan triggers (its version, the dashboards' version, the reminders' resolution)
triggered once."""

from datetime import date
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions import signals as actions_signals
from actions.excel import apply_import, check_identity, open_workbook, read_workbook
from actions.models import FicheAction, Indicateur, LigneFinancement
from pvd.audit import history
from rappels import signals as rappels_signals
from tableaux import signals as tableaux_signals

from .test_excel import FICHES, FINANCEMENTS, put, text_of, upload, url, workbook_bytes

pytestmark = pytest.mark.django_db


def plan_rows(commune: str, n: int, titre: str, montant: int) -> tuple[list, list, list]:
    """``n`` fiches, each with two financing lines, a commune and an indicator."""
    fiches = [
        {
            "Référence": f"9.{k}",
            "Titre": f"{titre} {k}",
            "Axe": 1 + k % 5,
            "Début prévu": date(2025, 3, 1),
            "Fin prévue": date(2027, 6, 30),
            "Coût total HT": 100_000 + k,
            "Communes concernées": commune,
        }
        for k in range(1, n + 1)
    ]
    financements = [
        {"Référence de la fiche": f"9.{k}", "Financeur": financeur, "Montant": montant + k}
        for k in range(1, n + 1)
        for financeur in ("DSIL", "Région")
    ]
    indicateurs = [
        {
            "Référence de la fiche": f"9.{k}",
            "Indicateur": "Logements rénovés",
            "Type": "Réalisation",
            "Unité": "logements",
            "Cible": montant // 100 + k,
        }
        for k in range(1, n + 1)
    ]
    return fiches, financements, indicateurs


def plan_workbook(beneficiaire, n: int, titre: str = "Action", montant: int = 1_000) -> bytes:
    """A workbook of ``plan_rows``, naming the plan's first member commune on each fiche."""
    commune = beneficiaire.membres.order_by("commune__nom").first().commune
    fiches, financements, indicateurs = plan_rows(commune.nom, n, titre, montant)

    def edit(workbook) -> None:
        sheet = workbook["Indicateurs"]
        if sheet.max_row > 1:
            sheet.delete_rows(2, sheet.max_row)
        for row, values in enumerate(indicateurs, start=2):
            put(sheet, row, values)

    return workbook_bytes(beneficiaire, fiches, financements, edit=edit)


def import_counting_queries(beneficiaire, user, content: bytes):
    """The import of ``content``, and the number of queries its writing took."""
    workbook = open_workbook(SimpleUploadedFile("plan.xlsx", content))
    check_identity(workbook, beneficiaire)
    lecture = read_workbook(workbook, beneficiaire)
    assert not lecture.erreurs, lecture.erreurs[:3]
    with CaptureQueriesContext(connection) as queries:
        bilan = apply_import(lecture, beneficiaire, user)
    return bilan, len(queries)


def test_an_import_takes_as_many_queries_for_40_fiches_as_for_4(
    cdp_ussel, ussel_la_courtine, le_blanc
):
    # The journal names each model by its content type, which Django caches once read.
    ContentType.objects.get_for_models(FicheAction, LigneFinancement, Indicateur)
    counts = {}
    for beneficiaire, n in ((ussel_la_courtine, 4), (le_blanc, 40)):
        commune = beneficiaire.membres.order_by("commune__nom").first().commune
        bilan, created = import_counting_queries(
            beneficiaire, cdp_ussel, plan_workbook(beneficiaire, n)
        )
        assert len(bilan.creees) == n
        # Imported again with every title, amount and target changed: n fiches updated.
        content = plan_workbook(beneficiaire, n, titre="Tranche", montant=2_000)
        bilan, updated = import_counting_queries(beneficiaire, cdp_ussel, content)
        assert len(bilan.modifiees) == n
        counts[n] = (created, updated)
        fiches = FicheAction.objects.filter(beneficiaire=beneficiaire)
        assert set(fiches.values_list("titre", "version", "communes__code")) == {
            (f"Tranche {k}", 2, commune.code) for k in range(1, n + 1)
        }
        lignes = LigneFinancement.objects.filter(fiche__beneficiaire=beneficiaire)
        assert sorted(lignes.values_list("montant", flat=True)) == sorted(
            Decimal(2_000 + k) for k in range(1, n + 1) for _ in range(2)
        )
        cibles = Indicateur.objects.filter(fiche__beneficiaire=beneficiaire)
        assert sorted(cibles.values_list("cible", flat=True)) == [
            Decimal(20 + k) for k in range(1, n + 1)
        ]
    assert counts[4] == counts[40]


def test_imported_fiches_and_lines_are_journaled_as_created_by_the_importer(
    client_for, cdp_ussel, ussel_la_courtine
):
    client = client_for(cdp_ussel)
    response = upload(
        client, ussel_la_courtine, workbook_bytes(ussel_la_courtine, FICHES, FINANCEMENTS)
    )
    assert "2 fiches créées" in text_of(response)

    halle = FicheAction.objects.get(beneficiaire=ussel_la_courtine, reference="1.1")
    (entry,) = LogEntry.objects.get_for_object(halle)
    assert (entry.action, entry.actor, entry.remote_addr) == (
        LogEntry.Action.CREATE,
        cdp_ussel,
        "127.0.0.1",
    )
    assert entry.changes["titre"] == ["None", "Réhabilitation de l'îlot de la Halle"]
    assert entry.object_repr == str(halle)
    lignes = LogEntry.objects.get_for_objects(halle.financements.all())
    assert sorted((e.action, e.actor_id, e.object_repr) for e in lignes) == sorted(
        (LogEntry.Action.CREATE, cdp_ussel.pk, str(ligne)) for ligne in halle.financements.all()
    )

    # The fiche's « Historique » shows its creation by the importer, in words.
    page = text_of(client.get(url("fiche", halle.pk)))
    historique = page[page.index("Historique") :]
    assert "Création" in historique and cdp_ussel.get_full_name() in historique
    assert "Valeurs à la création" in historique
    assert "Titre : Réhabilitation de l'îlot de la Halle" in historique
    assert "Coût total (€ HT) : 300 000 €" in historique


def test_a_reimport_journals_the_changes_and_the_replaced_lines(
    client_for, cdp_ussel, ussel_la_courtine
):
    client = client_for(cdp_ussel)
    upload(client, ussel_la_courtine, plan_workbook(ussel_la_courtine, 2))
    fiche = FicheAction.objects.get(beneficiaire=ussel_la_courtine, reference="9.1")
    anciennes = list(fiche.financements.all())
    indicateur = fiche.indicateurs.get()
    LogEntry.objects.all().delete()

    upload(
        client,
        ussel_la_courtine,
        plan_workbook(ussel_la_courtine, 2, titre="Tranche", montant=2_000),
    )

    (modification,) = LogEntry.objects.get_for_object(fiche)
    assert (modification.action, modification.actor) == (LogEntry.Action.UPDATE, cdp_ussel)
    assert modification.changes["titre"] == ["Action 1", "Tranche 1"]
    assert modification.changes["version"] == ["1", "2"]
    for ancienne in anciennes:
        (suppression,) = LogEntry.objects.get_for_object(ancienne)
        assert (suppression.action, suppression.actor) == (LogEntry.Action.DELETE, cdp_ussel)
    nouvelles = LogEntry.objects.get_for_objects(fiche.financements.all())
    assert {e.action for e in nouvelles} == {LogEntry.Action.CREATE}
    assert len(nouvelles) == 2
    (cible,) = LogEntry.objects.get_for_object(indicateur)
    assert (cible.action, cible.changes) == (LogEntry.Action.UPDATE, {"cible": ["11.00", "21.00"]})
    rows = history(fiche)
    assert rows[0].who == cdp_ussel.get_full_name()
    assert any(c.label == "Titre" and c.after == "Tranche 1" for c in rows[0].changes)


def test_reimporting_unchanged_rows_journals_nothing(client_for, cdp_ussel, ussel_la_courtine):
    client = client_for(cdp_ussel)
    content = plan_workbook(ussel_la_courtine, 3)
    upload(client, ussel_la_courtine, content)
    before = LogEntry.objects.count()

    response = upload(client, ussel_la_courtine, content)

    assert "0 fiche créée, 0 mise à jour, 3 inchangées" in text_of(response)
    assert LogEntry.objects.count() == before


def test_an_import_gives_the_plan_and_dashboards_a_new_version_and_resolves_reminders_once(
    cdp_ussel, ussel_la_courtine, monkeypatch, django_capture_on_commit_callbacks
):
    plans, dashboards, resolved = [], [], []
    # What earlier tests left pending (their transactions never committed).
    monkeypatch.setattr(rappels_signals._pending, "ids", {}, raising=False)
    monkeypatch.setattr(actions_signals, "new_plan_version", plans.append)
    monkeypatch.setattr(tableaux_signals, "renew", dashboards.append)
    monkeypatch.setattr(
        "rappels.sweep.resolve", lambda day, beneficiaires: resolved.append(beneficiaires)
    )
    content = plan_workbook(ussel_la_courtine, 20)

    with django_capture_on_commit_callbacks(execute=True):
        bilan, _ = import_counting_queries(ussel_la_courtine, cdp_ussel, content)

    assert len(bilan.creees) == 20
    assert plans == [ussel_la_courtine.pk]
    assert dashboards == [
        {
            f"beneficiaire:{ussel_la_courtine.pk}",
            "departement:19",
            "region:75",
            "programme",
        }
    ]
    assert resolved == [{ussel_la_courtine.pk}]


def test_a_bulk_import_still_refuses_financing_above_the_cost(
    client_for, cdp_ussel, ussel_la_courtine
):
    client = client_for(cdp_ussel)
    upload(client, ussel_la_courtine, plan_workbook(ussel_la_courtine, 2))
    # The Financements sheet alone: the lines of 9.2 now exceed its stored cost.
    rows = [{"Référence de la fiche": "9.2", "Financeur": "DSIL", "Montant": 150_000}]

    response = upload(client, ussel_la_courtine, workbook_bytes(ussel_la_courtine, [], rows))

    assert "dépasse le coût" in text_of(response)
    fiche = FicheAction.objects.get(beneficiaire=ussel_la_courtine, reference="9.2")
    assert fiche.version == 1
    assert sorted(fiche.financements.values_list("montant", flat=True)) == [
        Decimal("1002"),
        Decimal("1002"),
    ]
