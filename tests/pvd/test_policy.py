"""The rights policy as one table: question × territory → the roles of the cast who may.

Each row names a question of pvd/policy.py, the territory or object it is asked about, and
the roles that get « yes »; every other role of the cast must get « no ». A new question
must get its rows here (test_the_table_asks_every_question).
"""

import importlib
import inspect
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps

from actions.models import ExportPlan, Financeur
from communes.models import Beneficiaire
from conventions.models import Convention, Partie
from gouvernance.models import Decision, Instance, Reunion, Suite
from pvd import policy

pytestmark = pytest.mark.django_db

CAST = [
    "national",
    "prefecture_36",
    "prefecture_19",
    "cdp_ussel",
    "elu_ussel",
    "elu_epci",
    "partenaire",
    "sans_role",
]
NATIONAL = {"national"}
STATE_19 = {"national", "prefecture_19"}  # Ussel – La Courtine is followed in the Corrèze
STATE_36 = {"national", "prefecture_36"}  # Le Blanc is in the Indre
USSEL_DRAFTERS = STATE_19 | {"cdp_ussel"}
NATION_READERS = {"national", "partenaire"}  # the partner reads the whole country


def export(user, departement: str | None, mine: bool = True) -> ExportPlan:
    return ExportPlan(
        perimetre="departement" if departement else "national",
        departement_id=departement,
        requested_by_id=user.pk if mine else -1,
    )


def comite(beneficiaire) -> Instance:
    return Instance(type=Instance.Type.COMITE_PROJET, beneficiaire=beneficiaire)


def clct(departement: str) -> Instance:
    return Instance(type=Instance.Type.CLCT, departement_id=departement, reunions_par_an=2)


def suite(instance: Instance, responsable_id: int) -> Suite:
    return Suite(
        decision=Decision(reunion=Reunion(instance=instance)), responsable_id=responsable_id
    )


# (question, territory, arguments after the user, who may)
TABLE = [
    ("is_national", "—", lambda u, lb, user: (), NATIONAL),
    ("is_without_territory", "—", lambda u, lb, user: (), {"sans_role"}),
    ("may_create_posts", "un département", lambda u, lb, user: (), STATE_19 | STATE_36),
    ("may_manage_posts", "19", lambda u, lb, user: (["19"],), STATE_19),
    ("may_manage_posts", "36", lambda u, lb, user: (["36"],), STATE_36),
    (
        "may_manage_post",
        "Ussel",
        lambda u, lb, user: (SimpleNamespace(departement_codes=["19"]),),
        STATE_19,
    ),
    (
        "may_invite_chef_de_projet",
        "Le Blanc",
        lambda u, lb, user: (SimpleNamespace(departement_codes=["36"]),),
        STATE_36,
    ),
    ("may_manage_cofinancing_rules", "France", lambda u, lb, user: (), NATIONAL),
    ("is_prefecture", "—", lambda u, lb, user: (), {"prefecture_19", "prefecture_36"}),
    ("must_use_mfa", "—", lambda u, lb, user: (), NATIONAL | {"prefecture_19", "prefecture_36"}),
    ("may_select", "un département", lambda u, lb, user: (), STATE_19 | STATE_36),
    ("may_select", "19", lambda u, lb, user: ("19",), STATE_19),
    ("may_select", "36", lambda u, lb, user: ("36",), STATE_36),
    ("may_decide", "Ussel", lambda u, lb, user: (u,), STATE_19),
    ("may_decide", "Le Blanc", lambda u, lb, user: (lb,), STATE_36),
    ("may_date_adhesion", "Ussel", lambda u, lb, user: (u,), STATE_19),
    ("may_date_adhesion", "Le Blanc", lambda u, lb, user: (lb,), STATE_36),
    ("may_import_adhesion_dates", "un département", lambda u, lb, user: (), STATE_19 | STATE_36),
    ("may_see_synthese", "France", lambda u, lb, user: (), NATION_READERS),
    ("may_draft_convention", "Ussel", lambda u, lb, user: (u,), USSEL_DRAFTERS),
    ("may_draft_convention", "Le Blanc", lambda u, lb, user: (lb,), STATE_36),
    (
        "may_edit_convention",
        "Ussel",
        lambda u, lb, user: (Convention(beneficiaire=u),),
        USSEL_DRAFTERS,
    ),
    (
        "may_edit_convention",
        "Le Blanc",
        lambda u, lb, user: (Convention(beneficiaire=lb),),
        STATE_36,
    ),
    (
        "may_send_for_signature",
        "Ussel",
        lambda u, lb, user: (Convention(beneficiaire=u),),
        USSEL_DRAFTERS,
    ),
    ("may_upload_scan", "Ussel", lambda u, lb, user: (Convention(beneficiaire=u),), USSEL_DRAFTERS),
    ("may_set_state_party", "Ussel", lambda u, lb, user: (Convention(beneficiaire=u),), STATE_19),
    (
        "may_record_signature",
        "Ussel, la commune",
        lambda u, lb, user: (Convention(beneficiaire=u), Partie(nature=Partie.Nature.COMMUNE)),
        USSEL_DRAFTERS,
    ),
    (
        "may_record_signature",
        "Ussel, l'État",
        lambda u, lb, user: (Convention(beneficiaire=u), Partie(nature=Partie.Nature.ETAT)),
        STATE_19,
    ),
    (
        "may_record_signature",
        "Le Blanc, la commune",
        lambda u, lb, user: (
            Convention(beneficiaire=lb),
            Partie(nature=Partie.Nature.COMMUNE),
        ),
        STATE_36,
    ),
    ("may_mark_signed", "Ussel", lambda u, lb, user: (Convention(beneficiaire=u),), STATE_19),
    (
        "may_mark_signed",
        "Le Blanc",
        lambda u, lb, user: (Convention(beneficiaire=lb),),
        STATE_36,
    ),
    ("may_date_signature", "Ussel", lambda u, lb, user: (Convention(beneficiaire=u),), STATE_19),
    ("may_terminate", "Ussel", lambda u, lb, user: (Convention(beneficiaire=u),), STATE_19),
    (
        "may_terminate",
        "Le Blanc",
        lambda u, lb, user: (Convention(beneficiaire=lb),),
        STATE_36,
    ),
    ("may_edit_plan", "Ussel", lambda u, lb, user: (u,), {"national", "cdp_ussel"}),
    ("may_edit_plan", "Le Blanc", lambda u, lb, user: (lb,), NATIONAL),
    (
        "may_request_bilan",
        "Ussel",
        lambda u, lb, user: (u,),
        USSEL_DRAFTERS | {"elu_ussel", "elu_epci"},
    ),
    ("may_request_bilan", "Le Blanc", lambda u, lb, user: (lb,), STATE_36),
    ("may_export", "France", lambda u, lb, user: (policy.NATIONAL,), NATION_READERS),
    ("may_export", "19", lambda u, lb, user: ("19",), NATION_READERS | {"prefecture_19"}),
    ("may_export", "36", lambda u, lb, user: ("36",), NATION_READERS | {"prefecture_36"}),
    (
        "may_export_somewhere",
        "—",
        lambda u, lb, user: (),
        NATION_READERS | {"prefecture_19", "prefecture_36"},
    ),
    (
        "may_see_export",
        "own, France",
        lambda u, lb, user: (export(user, None),),
        NATION_READERS,
    ),
    (
        "may_see_export",
        "own, 19",
        lambda u, lb, user: (export(user, "19"),),
        NATION_READERS | {"prefecture_19"},
    ),
    (
        "may_see_export",
        "another's, 19",
        lambda u, lb, user: (export(user, "19", mine=False),),
        NATIONAL,
    ),
    ("may_manage_access", "—", lambda u, lb, user: (), NATIONAL),
    ("may_manage_funders", "—", lambda u, lb, user: (), NATIONAL),
    ("may_refresh_reference", "—", lambda u, lb, user: (), NATIONAL),
    ("may_roll_out", "—", lambda u, lb, user: (), NATIONAL),
    ("may_manage_api_keys", "—", lambda u, lb, user: (), NATIONAL),
    ("may_read_audit_log", "—", lambda u, lb, user: (), STATE_19 | STATE_36),
    ("may_see_service_health", "—", lambda u, lb, user: (), NATIONAL),
    (
        "may_manage_instance",
        "comité de projet d'Ussel",
        lambda u, lb, user: (comite(u),),
        USSEL_DRAFTERS,
    ),
    (
        "may_manage_instance",
        "comité de projet du Blanc",
        lambda u, lb, user: (comite(lb),),
        STATE_36,
    ),
    ("may_manage_instance", "CLCT de l'Indre", lambda u, lb, user: (clct("36"),), STATE_36),
    ("may_manage_instance", "CLCT de la Corrèze", lambda u, lb, user: (clct("19"),), STATE_19),
    (
        "may_manage_instance",
        "comité régional, Centre-Val de Loire",
        lambda u, lb, user: (Instance(type="financeurs", region_id="24"),),
        STATE_36,
    ),
    (
        "may_create_instance",
        "quelque part",
        lambda u, lb, user: (),
        USSEL_DRAFTERS | STATE_36,
    ),
    (
        "may_create_instance",
        "comité de projet d'Ussel",
        lambda u, lb, user: (comite(u),),
        USSEL_DRAFTERS,
    ),
    (
        "may_create_instance",
        "comité technique du Blanc",
        lambda u, lb, user: (Instance(type="comite_technique", beneficiaire=lb),),
        STATE_36,
    ),
    ("may_create_instance", "CLCT de l'Indre", lambda u, lb, user: (clct("36"),), STATE_36),
    (
        "may_create_instance",
        "comité de pilotage départemental de la Corrèze",
        lambda u, lb, user: (Instance(type="copil_departemental", departement_id="19"),),
        STATE_19,
    ),
    (
        "may_create_instance",
        "comité régional des financeurs, Centre-Val de Loire",
        lambda u, lb, user: (Instance(type="financeurs", region_id="24"),),
        STATE_36,
    ),
    (
        "may_create_instance",
        "comité régional des financeurs, Nouvelle-Aquitaine",
        lambda u, lb, user: (Instance(type="financeurs", region_id="75"),),
        STATE_19,
    ),
    (
        "may_mark_suite_done",
        "Ussel, une suite d'un autre",
        lambda u, lb, user: (suite(comite(u), responsable_id=-1),),
        USSEL_DRAFTERS,
    ),
    (
        "may_mark_suite_done",
        "Le Blanc, sa propre suite",
        lambda u, lb, user: (suite(comite(lb), responsable_id=user.pk),),
        set(CAST),
    ),
    ("may_read_club", "France", lambda u, lb, user: (), set(CAST) - {"sans_role"}),
    ("may_share_fiche", "Ussel", lambda u, lb, user: (u,), USSEL_DRAFTERS),
    ("may_share_fiche", "Le Blanc", lambda u, lb, user: (lb,), STATE_36),
]


def test_the_table_asks_every_question():
    questions = {
        name
        for name, function in inspect.getmembers(policy, inspect.isfunction)
        if name.startswith(("may_", "is_", "must_")) and function.__module__ == policy.__name__
    }
    assert questions == {question for question, *_ in TABLE}
    assert all(who <= set(CAST) for *_, who in TABLE)


@pytest.mark.parametrize("role", CAST)
def test_policy_table(request, role):
    user = request.getfixturevalue(role)
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    le_blanc = Beneficiaire.objects.get(nom="Le Blanc")
    wrong = [
        f"{question} ({territory}): {'yes' if not allowed else 'no'} expected"
        for question, territory, arguments, who in TABLE
        if (allowed := getattr(policy, question)(user, *arguments(ussel, le_blanc, user)))
        != (role in who)
    ]
    assert wrong == []


# Whose money each role follows: the catalogue funders of ``partner_funders`` and the posts'
# funders of ``visible_funders`` (None: every funder's lines).
FUNDERS = {
    "national": ([], None),
    "prefecture_36": ([], None),
    "prefecture_19": ([], None),
    "cdp_ussel": ([], None),
    "elu_ussel": ([], None),
    "elu_epci": ([], None),
    "partenaire": (["Banque des Territoires"], {"bdt"}),
    "sans_role": ([], set()),
}


@pytest.mark.parametrize("role", CAST)
def test_funders_table(request, role):
    user = request.getfixturevalue(role)
    assert (
        [f.nom for f in policy.partner_funders(user)],
        policy.visible_funders(user),
    ) == FUNDERS[role]


def test_a_partner_follows_the_funders_its_role_points_at_not_its_name(partenaire):
    role = partenaire.roles.get()
    role.organisation = "Banque des Territoires"
    role.save()
    role.financeurs.set(Financeur.objects.filter(nom__in=["Anah", "FNADT", "Région"]))

    assert [f.nom for f in policy.partner_funders(partenaire)] == ["Anah", "FNADT", "Région"]
    # Région co-finances no post: the partner reads the Anah's and the State's lines.
    assert policy.visible_funders(partenaire) == {"anah", "etat"}

    role.financeurs.clear()
    assert policy.partner_funders(partenaire) == []
    assert policy.visible_funders(partenaire) == set()


def test_migration_links_partners_where_their_name_matched(partenaire):
    migration = importlib.import_module("pvd.migrations.0005_role_financeurs")
    role = partenaire.roles.get()
    organisations = {
        "banque des territoires": ["Banque des Territoires"],  # the dashboards' rule
        "État": ["FNADT"],  # the posts' rule: « État (FNADT) » without its bracket
        "ANCT": ["ANCT"],
        "Région": ["Région"],
        "Cerema": [],  # in no catalogue
    }
    for organisation, expected in organisations.items():
        role.organisation = organisation
        role.save()
        role.financeurs.clear()
        migration.link_partners_to_funders(django_apps, None)
        assert sorted(f.nom for f in role.financeurs.all()) == expected, organisation
