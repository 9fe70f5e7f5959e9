from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.core.management import CommandError, call_command
from django.utils import timezone

from actions.models import Axe, FicheAction, Indicateur, LigneFinancement, PointAvancement
from communes.models import Beneficiaire, Commune, Region
from postes.models import LigneCofinancement, Occupation, Poste
from postes.plafonds import plafond_stocke

pytestmark = pytest.mark.django_db

Maturite = FicheAction.Maturite


def generate(**options) -> str:
    out = StringIO()
    call_command("generate_bench_data", stdout=out, **options)
    return out.getvalue()


def bench_beneficiaires():
    return Beneficiaire.objects.filter(departement__region_id="XX")


def assert_financing_within_cost(fiches) -> None:
    for fiche in fiches.with_financement():
        assert fiche.finance <= fiche.cout_total, fiche


# Bench data ---------------------------------------------------------------------------------


def test_bench_data_has_the_requested_size(empty_base, settings):
    settings.DEBUG = True

    generate(beneficiaires=3, fiches=4, lignes=2)

    beneficiaires = bench_beneficiaires()
    assert beneficiaires.count() == 3
    assert set(beneficiaires.values_list("statut", flat=True)) == {"laureat"}
    for beneficiaire in beneficiaires:
        (membre,) = beneficiaire.membres.all()
        assert membre.actif and membre.commune.code.startswith("X")
        assert [a.numero for a in beneficiaire.axes.all()] == [1, 2, 3, 4, 5, 6]
    fiches = FicheAction.objects.filter(beneficiaire__in=beneficiaires)
    assert fiches.count() == 12
    assert LigneFinancement.objects.filter(fiche__in=fiches).count() == 24
    assert Indicateur.objects.filter(fiche__in=fiches).count() == 12
    for fiche in fiches:
        assert fiche.axe.beneficiaire_id == fiche.beneficiaire_id
        assert fiche.axe.numero == int(fiche.reference.split(".")[0])
        assert 50_000 <= fiche.cout_total <= 3_000_000
        assert fiche.financements.values("financeur").distinct().count() == 2
    assert_financing_within_cost(fiches)
    # Written in bulk: nothing in the audit trail.
    assert not LogEntry.objects.exists()


def test_bench_data_is_written_once_and_reset_on_request(settings, territoires):
    settings.DEBUG = True
    generate(beneficiaires=3, fiches=2, lignes=1)
    titres = list(FicheAction.objects.values_list("reference", "titre", "cout_total"))

    assert "déjà présentes" in generate(beneficiaires=3, fiches=2, lignes=1)
    assert bench_beneficiaires().count() == 3

    generate(beneficiaires=3, fiches=2, lignes=1, reset=True)
    assert list(FicheAction.objects.values_list("reference", "titre", "cout_total")) == titres

    generate(beneficiaires=0, reset=True)
    assert not bench_beneficiaires().exists()
    assert not Commune.objects.filter(code__startswith="X").exists()
    assert not Region.objects.filter(code="XX").exists()
    assert not Axe.objects.exists()
    # The real territories are left alone.
    assert Beneficiaire.objects.count() == 18


def test_bench_data_has_chef_de_projet_posts_within_the_ceilings(empty_base, settings):
    settings.DEBUG = True
    generate(beneficiaires=40, fiches=1, lignes=1)

    postes = Poste.objects.filter(beneficiaires__departement__region_id="XX").distinct()
    servis = set(postes.values_list("beneficiaires", flat=True))
    assert servis == set(bench_beneficiaires().values_list("pk", flat=True))
    assert 30 <= postes.count() <= 40  # one each, one for all of a few EPCIs
    assert len(set(postes.values_list("etat", flat=True))) >= 3
    today = timezone.localdate()
    for poste in postes.prefetch_related("occupations", "annees__lignes"):
        actuelles = [o for o in poste.occupations.all() if o.is_actuelle(today)]
        assert len(actuelles) == (1 if poste.etat == Poste.Etat.POURVU else 0), poste
        assert (poste.vacant_depuis is not None) == (
            poste.etat == Poste.Etat.VACANT
            or (poste.etat == Poste.Etat.EN_RECRUTEMENT and bool(poste.occupations.all()))
        )
        for annee in poste.annees.all():
            assert annee.annee >= poste.date_creation.year
            assert not plafond_stocke(annee).erreurs(
                {li.financeur: li.montant_notifie for li in annee.lignes.all()}
            ), annee
    assert LigneCofinancement.objects.filter(annee__poste__in=postes).exists()


def test_bench_posts_are_added_to_a_base_filled_before_them(empty_base, settings):
    settings.DEBUG = True
    generate(beneficiaires=6, fiches=1, lignes=1)
    postes = list(Poste.objects.order_by("pk").values_list("intitule", "etat", "date_creation"))
    Poste.objects.all().delete()

    assert "postes ajoutés" in generate(beneficiaires=6, fiches=1, lignes=1)
    again = list(Poste.objects.order_by("pk").values_list("intitule", "etat", "date_creation"))
    assert again == postes  # their own random draws: the same as when generated with the plans
    assert FicheAction.objects.count() == 6  # nothing else written again
    assert "déjà présentes" in generate(beneficiaires=6, fiches=1, lignes=1)

    generate(beneficiaires=0, reset=True)
    assert not Poste.objects.exists()
    assert not Occupation.objects.exists()


def test_bench_data_refuses_a_base_without_debug(empty_base, settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="DEBUG est désactivé"):
        generate(beneficiaires=1)
    assert not Beneficiaire.objects.exists()

    generate(beneficiaires=1, fiches=1, lignes=1, yes_i_know=True)
    assert bench_beneficiaires().count() == 1


# Demo plans ---------------------------------------------------------------------------------


@pytest.mark.parametrize("nom", ["Ussel – La Courtine", "Le Blanc"])
def test_demo_instance_gets_a_credible_plan(empty_base, settings, nom):
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())

    fiches = FicheAction.objects.filter(beneficiaire__nom=nom)
    assert 14 <= fiches.count() <= 18
    assert fiches.values("axe__numero").distinct().count() >= 5
    assert fiches.values("maturite").distinct().count() >= 4
    assert fiches.values("avancement").distinct().count() >= 4
    lignes = LigneFinancement.objects.filter(fiche__in=fiches)
    assert lignes.values("financeur").distinct().count() >= 3
    assert fiches.en_retard().exists()
    assert fiches.filter(maturite=Maturite.LIVREE).exists()
    assert fiches.filter(date_debut_prevue__year=2021).exists()
    assert fiches.filter(date_fin_prevue__year=2028).exists()
    assert Indicateur.objects.filter(fiche__in=fiches, mesures__isnull=False).exists()
    assert_financing_within_cost(fiches)
    for fiche in fiches:
        fiche.full_clean()


def test_demo_plans_are_seeded_once_with_a_progress_journal(empty_base, settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    counts = (FicheAction.objects.count(), LigneFinancement.objects.count())

    call_command("seed_demo", stdout=StringIO())

    assert (FicheAction.objects.count(), LigneFinancement.objects.count()) == counts
    points = PointAvancement.objects.filter(fiche__beneficiaire__nom="Ussel – La Courtine")
    assert points.count() >= 2
    assert {p.auteur.email for p in points} == {"cdp-ussel@demo.pvd.fr"}


def test_production_instance_gets_no_demo_plan(empty_base, settings):
    settings.DEBUG = False
    call_command("seed_demo", stdout=StringIO())
    assert not FicheAction.objects.exists()
