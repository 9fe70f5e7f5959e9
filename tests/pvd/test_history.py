"""« Historique » on every object and the journal in words: labels, names, Oui/Non, euros,
choices by label; read by whoever reads the object, the journal scoped to the département."""

from datetime import date
from decimal import Decimal

import pytest
from auditlog.context import set_actor
from auditlog.models import LogEntry
from django.urls import reverse

from actions.models import ensure_axes
from communes.models import Beneficiaire
from conventions.models import Convention
from pvd.audit import history, journal_bulk, readable
from tests.actions.test_plan import fiche

pytestmark = pytest.mark.django_db


@pytest.fixture
def fiche_ussel(ussel_la_courtine, cdp_ussel):
    ensure_axes(ussel_la_courtine)
    created = fiche(
        ussel_la_courtine, 4, "4.1", 100000, [("DSIL", 40000, "notifie")], titre="Halle"
    )
    with set_actor(cdp_ussel):
        created.cout_total = Decimal("130000.50")
        created.avancement = "operationnelle"
        created.budget_vert = True
        created.date_fin_prevue = date(2027, 5, 1)
        created.axe = ussel_la_courtine.axes.get(numero=2)
        created.save()
        ligne = created.financements.get()
        ligne.montant = Decimal("30000")
        ligne.save()
    return created


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_a_chef_de_projet_reads_the_history_of_their_fiche_in_words(
    client_for, cdp_ussel, fiche_ussel
):
    content = page(client_for(cdp_ussel), reverse("actions:fiche", args=[fiche_ussel.pk]))
    historique = content[content.index('id="historique-titre"') :]
    assert cdp_ussel.get_full_name() in historique
    assert "Coût total (€ HT) : 100\u00a0000\u00a0€ → 130\u00a0000,50\u00a0€" in historique
    assert "Budget vert : Non → Oui" in historique
    assert "Fin prévue : — → 1er mai 2027" in historique
    assert "Avancement : Non commencée → Opérationnelle" in historique
    axe = str(fiche_ussel.beneficiaire.axes.get(numero=2))
    assert f"→ {axe}" in historique
    # The financing line's change names its fiche and funder, in euros.
    assert "Montant (€) : 40\u00a0000\u00a0€ → 30\u00a0000\u00a0€" in historique
    assert "Ligne de financement « DSIL : 30\u00a0000\u00a0€, fiche 4.1 »" in historique
    for raw in ("130000.50", "True", "False", "None", "ID : ", "pvd.Role.None"):
        assert raw not in historique


def test_another_territory_gets_404_on_the_object_and_its_history(
    client_for, prefecture_36, fiche_ussel
):
    url = reverse("actions:fiche", args=[fiche_ussel.pk])
    assert client_for(prefecture_36).get(url).status_code == 404


def test_beneficiary_convention_and_post_pages_have_their_history(
    client_for, prefecture_19, ussel_la_courtine
):
    with set_actor(prefecture_19):
        convention = Convention.objects.create(
            beneficiaire=ussel_la_courtine, type=Convention.Type.CADRE, titre="Cadre Ussel"
        )
        convention.date_signature = date(2024, 3, 1)
        convention.save()
        Beneficiaire.objects.filter(pk=ussel_la_courtine.pk).update()  # nothing logged
        ussel_la_courtine.refresh_from_db()
        ussel_la_courtine.save()
    client = client_for(prefecture_19)
    content = page(client, reverse("conventions:detail", args=[convention.pk]))
    assert "Historique" in content
    assert "Date de signature : — → 1er mars 2024" in content
    content = page(client, reverse("communes:beneficiaire-detail", args=[ussel_la_courtine.pk]))
    assert 'id="historique-titre"' in content


def test_user_changes_read_oui_non_and_skip_reverse_relations(national, sans_role):
    with set_actor(national):
        sans_role.is_superuser = True
        sans_role.save()
    rows = readable(list(LogEntry.objects.get_for_object(sans_role)))
    changes = [c for row in rows for c in row.changes]
    assert any(c.label == "Statut super-utilisateur" and c.after == "Oui" for c in changes)
    assert all("None" not in f"{c.before}{c.after}{c.text}" for c in changes)
    assert rows[0].who == national.get_full_name() or rows[0].who == national.email


def test_history_names_the_object(fiche_ussel):
    rows = history(fiche_ussel)
    assert rows[0].objet.startswith("Fiche") and "Halle" in rows[0].objet


def test_the_entries_of_an_objects_rows_are_found_through_their_object_id(fiche_ussel):
    """The rows of an object given as a QuerySet are read first as an array
    (``= ANY(ARRAY(subquery))``): PostgreSQL then finds their entries through the index on
    the object id, where ``IN (subquery)`` in the disjunction filtered every entry of the
    journal against it (0.7 ms against 860 ms among two million entries)."""
    from pvd.audit import history_query

    query = history_query(fiche_ussel, fiche_ussel.financements.all())
    sql = str(query.query)
    assert '"object_id" = ANY(ARRAY(SELECT' in sql
    assert "IN (SELECT" not in sql
    objets = {row[3] for row in query}  # each entry's object_repr
    assert "4.1 – Halle" in objets
    assert any(objet.startswith("DSIL :") for objet in objets)


def test_prefecture_reads_the_journal_of_its_departement_only(
    client_for, prefecture_19, prefecture_36, fiche_ussel
):
    content = page(client_for(prefecture_19), reverse("portail:audit-log"))
    assert "Halle" in content and "130\u00a0000,50\u00a0€" in content
    assert "Imports de données de référence" not in content
    other = page(client_for(prefecture_36), reverse("portail:audit-log"))
    assert "Halle" not in other


def test_chef_de_projet_and_partner_get_403_on_the_journal(client_for, cdp_ussel, partenaire):
    assert client_for(cdp_ussel).get(reverse("portail:audit-log")).status_code == 403
    assert client_for(partenaire).get(reverse("portail:audit-log")).status_code == 403


def test_national_journal_is_readable(client_for, national, fiche_ussel):
    content = page(client_for(national), reverse("portail:audit-log"))
    assert "Budget vert : Non → Oui" in content
    assert "Imports de données de référence" in content


def test_many_to_many_changes_name_the_objects(national, sans_role):
    from communes.models import Departement
    from pvd.models import Role

    with set_actor(national):
        role = Role.objects.create(user=sans_role, kind="prefecture")
        role.departements.add(Departement.objects.get(code="36"))
    rows = readable(list(LogEntry.objects.get_for_object(role)))
    texts = [c.text for row in rows for c in row.changes if c.text]
    assert any(t.endswith(", ajout : " + str(Departement.objects.get(code="36"))) for t in texts)


def test_the_prefecture_dashboard_links_to_its_journal(client_for, prefecture_19):
    page_content = page(client_for(prefecture_19), reverse("portail:home"))
    assert reverse("portail:audit-log") in page_content
    assert "Journal des modifications de vos départements" in page_content


def test_rows_journaled_in_bulk_read_as_one_save_of_each_would(
    cdp_ussel, ussel_la_courtine, monkeypatch
):
    """The Excel import writes in bulk and journals its rows itself (pvd.audit.journal_bulk):
    the same changes as auditlog's entry for one save, the importer as author."""
    from actions.models import FicheAction, Financeur, Indicateur, LigneFinancement

    ensure_axes(ussel_la_courtine)
    with set_actor(cdp_ussel):
        created = fiche(
            ussel_la_courtine,
            2,
            "2.7",
            Decimal("250000.50"),
            titre="Halle",
            budget_vert=True,
            date_fin_prevue=date(2027, 5, 1),
            updated_by=cdp_ussel,
        )
        ligne = LigneFinancement.objects.create(
            fiche=created,
            financeur=Financeur.objects.get(nom="DSIL"),
            montant=Decimal("40000.00"),
            statut="notifie",
        )
        indicateur = Indicateur.objects.create(
            fiche=created, type="realisation", libelle="Logements", unite="logements"
        )
    saved = {
        type(row): LogEntry.objects.get_for_object(row).get().changes
        for row in (created, ligne, indicateur)
    }
    LogEntry.objects.all().delete()

    journal_bulk(cdp_ussel, created=[created, ligne, indicateur], deleted=[ligne])

    for model in (FicheAction, LigneFinancement, Indicateur):
        (entry,) = LogEntry.objects.filter(
            content_type__model=model._meta.model_name, action=LogEntry.Action.CREATE
        )
        own = {f.name for f in model._meta.concrete_fields}
        # auditlog also records reverse relations as « app.Model.None »: nothing to read.
        assert entry.changes == {k: v for k, v in saved[model].items() if k in own}
        assert (entry.actor, entry.actor_email) == (cdp_ussel, cdp_ussel.email)
    deleted = LogEntry.objects.get(action=LogEntry.Action.DELETE)
    assert deleted.changes == {k: [v[1], v[0]] for k, v in saved[LigneFinancement].items()}
    assert deleted.object_repr == str(ligne)
    (row,) = readable([LogEntry.objects.get(content_type__model="ficheaction")])
    assert row.who == cdp_ussel.get_full_name() and row.action == "Création"
    assert {(c.label, c.after) for c in row.changes} >= {
        ("Titre", "Halle"),
        ("Budget vert", "Oui"),
        ("Coût total (€ HT)", "250\u00a0000,50\u00a0€"),
        ("Fin prévue", "1er mai 2027"),
    }
