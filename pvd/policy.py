"""Who may do what: every write and action right, by name, over the user's perimeter.

Reading is `Model.objects.for_user(user)`; this module answers everything else. Models,
views, forms, exports and templates (`{% may %}`, pvd/templatetags/policy.py) ask it; none
re-derives a rule from role codes. Each function says who, never when: a convention's
status is checked by the model method that changes it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from django.apps import apps
from django.db.models import Q

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from actions.models import ExportPlan
    from communes.models import Beneficiaire
    from conventions.models import Convention, Partie
    from pvd.models import User


# Who the user is -----------------------------------------------------------------------------


def is_national(user: User) -> bool:
    """The ANCT national team: every right, everywhere."""
    return user.perimeter.national


def is_prefecture(user: User) -> bool:
    """Staff of a préfecture, for at least one département."""
    return bool(user.perimeter.prefecture_departement_codes)


def must_use_mfa(user: User) -> bool:
    """National staff, préfecture staff and anyone with admin access log in with a second factor."""
    return user.is_staff or user.is_superuser or is_national(user) or is_prefecture(user)


def sees_everything(user: User) -> bool:
    """National staff, and the partners who read the whole country."""
    return user.perimeter.sees_everything


_sees_everything = sees_everything


def is_without_territory(user: User) -> bool:
    """No role gives the user any territory to read yet."""
    return user.perimeter.is_empty


def prefecture_departements(user: User) -> frozenset[str]:
    """The départements where the user acts for the State (préfecture)."""
    return user.perimeter.prefecture_departement_codes


def works_for(user: User, beneficiaire_id: int) -> bool:
    """The user is one of this beneficiary's chefs de projet."""
    return beneficiaire_id in user.perimeter.beneficiaire_ids


def role_beneficiaires(user: User) -> frozenset[int]:
    """The beneficiaries the user's roles name (a chef de projet's)."""
    return user.perimeter.beneficiaire_ids


def perimeter_key(user: User) -> str:
    """Differs whenever what the user reads does: keys cached fragments read per user."""
    return user.perimeter.cache_key


def communes_q(user: User, prefix: str = "") -> Q:
    """The communes the user reads (or a relation to them, through ``prefix``)."""
    return user.perimeter.commune_q(prefix)


def role_departements_q(user: User) -> Q | None:
    """The départements and régions the user's roles name, None when they name none (or
    the user reads everything): the home page lists them."""
    perimeter = user.perimeter
    if perimeter.sees_everything or not (perimeter.departement_codes or perimeter.region_codes):
        return None
    return Q(code__in=perimeter.departement_codes) | Q(region_id__in=perimeter.region_codes)


def role_communes_q(user: User) -> Q | None:
    """The communes and EPCI the user's roles name, None when they name none."""
    perimeter = user.perimeter
    if not (perimeter.commune_codes or perimeter.epci_sirens):
        return None
    return Q(code__in=perimeter.commune_codes) | Q(epci_id__in=perimeter.epci_sirens)


def _acts_for_state(user: User, departement_code: str) -> bool:
    # The préfecture of that département, or national staff.
    perimeter = user.perimeter
    return perimeter.national or departement_code in perimeter.prefecture_departement_codes


def _works_for(user: User, beneficiaire: Beneficiaire) -> bool:
    return works_for(user, beneficiaire.pk)


# Selection and decisions ---------------------------------------------------------------------


def may_select(user: User, departement_code: str | None = None) -> bool:
    """Propose beneficiaries in that département (None: in at least one)."""
    if departement_code is None:
        return is_national(user) or bool(user.perimeter.prefecture_departement_codes)
    return _acts_for_state(user, departement_code)


def may_decide(user: User, beneficiaire: Beneficiaire) -> bool:
    """Record the State's decisions on a beneficiary's status."""
    return _acts_for_state(user, beneficiaire.departement_id)


def may_date_adhesion(user: User, beneficiaire: Beneficiaire) -> bool:
    """Fill a beneficiary's unknown adhésion date: the State in its département."""
    return _acts_for_state(user, beneficiaire.departement_id)


def may_import_adhesion_dates(user: User) -> bool:
    """Fill adhésion dates from a file: national staff and préfectures (each row is then
    checked with ``may_date_adhesion``)."""
    return is_national(user) or bool(user.perimeter.prefecture_departement_codes)


def may_see_synthese(user: User) -> bool:
    """The national picture: for those who read the whole country."""
    return _sees_everything(user)


# Conventions ---------------------------------------------------------------------------------


def may_draft_convention(user: User, beneficiaire: Beneficiaire) -> bool:
    """Its chefs de projet, its préfecture and national staff write its conventions."""
    return _works_for(user, beneficiaire) or _acts_for_state(user, beneficiaire.departement_id)


def may_edit_convention(user: User, convention: Convention) -> bool:
    """Edit the text, the parties and the ORT perimeter, generate the PDF, file the scan."""
    return may_draft_convention(user, convention.beneficiaire)


def may_send_for_signature(user: User, convention: Convention) -> bool:
    """Send the draft to the signatories: its drafters."""
    return may_edit_convention(user, convention)


def may_upload_scan(user: User, convention: Convention) -> bool:
    """File the signed convention, scanned: its drafters."""
    return may_edit_convention(user, convention)


def _acts_for_state_on(user: User, convention: Convention) -> bool:
    # The État's side of a convention: its préfecture or national staff.
    return _acts_for_state(user, convention.beneficiaire.departement_id)


def may_set_state_party(user: User, convention: Convention) -> bool:
    """Add, remove, or change the role of the État among the parties."""
    return _acts_for_state_on(user, convention)


def may_record_signature(user: User, convention: Convention, partie: Partie) -> bool:
    """The collectivités' dates by the drafters; the État's by the State only."""
    if partie.is_etat:
        return _acts_for_state_on(user, convention)
    return may_edit_convention(user, convention)


def may_mark_signed(user: User, convention: Convention) -> bool:
    """Declare it signed (the État signs last): the State only."""
    return _acts_for_state_on(user, convention)


def may_date_signature(user: User, convention: Convention) -> bool:
    """Complete the date of a convention known to be signed (national tracking)."""
    return _acts_for_state_on(user, convention)


def may_terminate(user: User, convention: Convention) -> bool:
    """Terminate a signed convention (« résilier »): the State only."""
    return _acts_for_state_on(user, convention)


# Action plans and exports --------------------------------------------------------------------


def may_edit_plan(user: User, beneficiaire: Beneficiaire) -> bool:
    """The chefs de projet of the beneficiary keep its plan; national staff may too."""
    return is_national(user) or _works_for(user, beneficiaire)


def may_request_bilan(user: User, beneficiaire: Beneficiaire, lu: bool = False) -> bool:
    """« Télécharger le bilan »: whoever reads the beneficiary and acts for it — its élus, its
    chefs de projet, its préfecture, national staff; not the partners, who only read.
    ``lu``: the beneficiary was read through ``for_user(user)`` (the user reads it: no
    query)."""
    if _works_for(user, beneficiaire) or _acts_for_state(user, beneficiaire.departement_id):
        return True
    if user.perimeter.readonly_nation:
        return False
    return lu or type(beneficiaire).objects.for_user(user).filter(pk=beneficiaire.pk).exists()


NATIONAL = None  # the scope of may_export for the whole country


def may_export(user: User, departement_code: str | None = NATIONAL) -> bool:
    """France entière: national readers; a département: them and its préfecture."""
    perimeter = user.perimeter
    if perimeter.sees_everything:
        return True
    return departement_code is not NATIONAL and (
        departement_code in perimeter.prefecture_departement_codes
    )


def may_export_somewhere(user: User) -> bool:
    """Open the exports page: France entière or at least one département."""
    return _sees_everything(user) or bool(user.perimeter.prefecture_departement_codes)


def exportable_departements(user: User, departements: QuerySet) -> QuerySet:
    """The départements, among those given, whose fiches the user may export."""
    if may_export(user, NATIONAL):
        return departements
    return departements.filter(code__in=user.perimeter.prefecture_departement_codes)


def may_see_export(user: User, export: ExportPlan) -> bool:
    """Only the requester (still allowed to export that scope) or national staff."""
    if is_national(user):
        return True
    return export.requested_by_id == user.pk and may_export(user, export.departement_id)


# National administration ---------------------------------------------------------------------


def may_manage_access(user: User) -> bool:
    """Create accounts and give or take roles."""
    return is_national(user)


def may_refresh_reference(user: User) -> bool:
    """Refresh the official reference (COG, SIREN, populations, ANCT lists, ORT file)."""
    return is_national(user)


def may_roll_out(user: User) -> bool:
    """Bring the programme's people in from a spreadsheet and send their invitations."""
    return is_national(user)


def may_manage_funders(user: User) -> bool:
    """Keep the catalogue of funders."""
    return is_national(user)


def may_manage_api_keys(user: User) -> bool:
    """Create, list and revoke the partners' API keys (api/)."""
    return is_national(user)


def may_read_audit_log(user: User) -> bool:
    """Read the journal: of every change for national staff, of the objects of their
    départements for préfectures (pvd.audit.readable_for_user_q)."""
    return is_national(user) or is_prefecture(user)


# Posts of chefs de projet -------------------------------------------------------------------
# Reading goes through Poste.objects.for_user(user); these answer the other questions.


def may_manage_posts(user: User, departement_codes) -> bool:
    """Create and edit posts, occupations and co-financing: national staff, or the
    préfecture of (one of) the département(s) of the post's beneficiaries."""
    perimeter = user.perimeter
    if perimeter.national:
        return True
    return bool(set(departement_codes) & perimeter.prefecture_departement_codes)


def may_create_posts(user: User) -> bool:
    """Open posts for at least one beneficiary: national staff or a préfecture."""
    return is_national(user) or is_prefecture(user)


def may_manage_post(user: User, poste) -> bool:
    return may_manage_posts(user, poste.departement_codes)


def may_manage_cofinancing_rules(user: User) -> bool:
    """The programme's rules are national: only ANCT staff add or close them."""
    return user.perimeter.national


def may_invite_chef_de_projet(user: User, poste) -> bool:
    return may_manage_post(user, poste)


def partner_funders(user: User) -> list:
    """The catalogue funders (actions.models.Financeur) whose money a partner follows: those
    its partner roles point at (``Role.financeurs``, set by the national team); none for
    anyone else. One query."""
    from pvd.models import Role

    # Read through the role's field: the kernel imports no feature app.
    financeur = Role._meta.get_field("financeurs").related_model
    return list(
        financeur.objects.filter(partenaires__user=user, partenaires__kind=Role.Kind.PARTENAIRE)
        .distinct()
        .order_by("nom")
    )


def visible_funders(user: User) -> set[str] | None:
    """Funders whose co-financing lines of posts the user reads (their codes in
    postes.models.Financeur); None for all of them.

    A partner reads its own funders' lines only (``partner_funders``); the State, the chef de
    projet and the élus read every line of the posts they see.
    """
    from pvd.models import Role

    if user.perimeter.national or user.perimeter.prefecture_departement_codes:
        return None
    kinds = {role.kind for role in user.roles.all()}
    if kinds & {Role.Kind.CHEF_PROJET, Role.Kind.ELU}:
        return None
    return {f.code_poste for f in partner_funders(user) if f.code_poste}


# Governance (gouvernance/) --------------------------------------------------------------------
# Reading goes through Instance.objects.for_user(user) (its members read it too).


def may_manage_instance(user: User, instance) -> bool:
    """Schedule an instance's meetings, convoke, record attendance, agenda and decisions,
    publish the relevé: a beneficiary's instance (comité de projet…) by its chefs de projet
    and its préfecture; a département's (CLCT…) by its préfecture; a région's by the
    préfectures of its départements; national staff everywhere."""
    if instance.beneficiaire_id:
        return works_for(user, instance.beneficiaire_id) or _acts_for_state(
            user, instance.beneficiaire.departement_id
        )
    if instance.departement_id:
        return _acts_for_state(user, instance.departement_id)
    if is_national(user):
        return True
    departements = apps.get_model("communes", "Departement").objects
    return departements.filter(
        region_id=instance.region_id, code__in=user.perimeter.prefecture_departement_codes
    ).exists()


def may_create_instance(user: User, instance=None) -> bool:
    """Set up an instance (``instance``: unsaved, its type and perimeter set; None: somewhere).
    Whoever will keep it: a beneficiary's (comité de projet, comité technique…) by its chefs de
    projet and its préfecture; a département's (CLCT, comité de pilotage départemental) by its
    préfecture; a région's (comité régional des financeurs) by the préfectures of its
    départements (the préfet de région is one of them); national staff everywhere."""
    if instance is None:
        perimeter = user.perimeter
        return bool(
            perimeter.national
            or perimeter.prefecture_departement_codes
            or perimeter.beneficiaire_ids
        )
    return may_manage_instance(user, instance)


def instance_perimeters_q(user: User) -> tuple[Q, Q, Q] | None:
    """Where the user may set up an instance, as filters over (Beneficiaire, Departement,
    Region); None: everywhere (national staff). The choices of the instance form."""
    perimeter = user.perimeter
    if perimeter.national:
        return None
    prefectures = perimeter.prefecture_departement_codes
    return (
        Q(pk__in=perimeter.beneficiaire_ids) | Q(departement_id__in=prefectures),
        Q(code__in=prefectures),
        Q(departements__code__in=prefectures),
    )


def may_mark_suite_done(user: User, suite) -> bool:
    """Mark a follow-up done: the person responsible, or whoever manages the instance."""
    return suite.responsable_id == user.pk or may_manage_instance(
        user, suite.decision.reunion.instance
    )


# The Club Petites villes de demain (club/) --------------------------------------------------
# The second read rule: everyone with a role in the programme reads, across all towns, what
# a fiche says (title, axis, description, maturity, progress, planned dates, cost, its
# funders' names, its town) unless the town marked it « non partagée avec le Club »; the
# financing lines in detail, attachments, progress notes and indicators stay within the
# perimeter (``for_user``). ``FicheAction.objects.club_for(user)`` applies it.


def may_read_club(user: User) -> bool:
    """Search the Club, read its annuaire and contact its chefs de projet: anyone with a role."""
    return not user.perimeter.is_empty


def may_share_fiche(user: User, beneficiaire: Beneficiaire) -> bool:
    """Mark a fiche shared or « non partagée avec le Club »: its chefs de projet and its
    préfecture (and national staff)."""
    return _works_for(user, beneficiaire) or _acts_for_state(user, beneficiaire.departement_id)


# Reminders and notifications (rappels/) ----------------------------------------------------


def may_see_service_health(user: User) -> bool:
    """The « Santé du service » page (periodic tasks, queue): national staff."""
    return is_national(user)


# Who is told about a beneficiary: the audiences a reminder rule names.
CHEF_PROJET, ELUS, PREFECTURE = "chef_projet", "elus", "prefecture"


def reminder_recipients(audiences, beneficiaire_ids=None) -> dict[int, dict[str, set[int]]]:
    """{beneficiary id: {audience: user ids}} for the audiences named, in one query each.

    Its chefs de projet (a chef de projet role naming it); its élus (an élu role for one of
    its active communes or for its EPCI); its préfecture (a préfecture role for its
    département). Inactive accounts receive nothing.
    """
    from pvd.models import Role

    Beneficiaire = apps.get_model("communes", "Beneficiaire")
    MembreBeneficiaire = apps.get_model("communes", "MembreBeneficiaire")
    result: dict[int, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    beneficiaires = Beneficiaire.objects.all()
    if beneficiaire_ids is not None:
        beneficiaires = beneficiaires.filter(pk__in=beneficiaire_ids)
    active = {"role__user__is_active": True}
    if CHEF_PROJET in audiences:
        rows = Role.beneficiaires.through.objects.filter(
            role__kind=Role.Kind.CHEF_PROJET, beneficiaire__in=beneficiaires, **active
        ).values_list("beneficiaire_id", "role__user_id")
        for beneficiaire_id, user_id in rows:
            result[beneficiaire_id][CHEF_PROJET].add(user_id)
    if ELUS in audiences:
        by_commune = (
            MembreBeneficiaire.objects.filter(actif=True, beneficiaire__in=beneficiaires)
            .filter(
                commune__in=Role.communes.through.objects.filter(
                    role__kind=Role.Kind.ELU, **active
                ).values("commune_id")
            )
            .values_list("beneficiaire_id", "commune_id")
        )
        elus_of_commune: dict[str, set[int]] = defaultdict(set)
        for commune_id, user_id in Role.communes.through.objects.filter(
            role__kind=Role.Kind.ELU, **active
        ).values_list("commune_id", "role__user_id"):
            elus_of_commune[commune_id].add(user_id)
        for beneficiaire_id, commune_id in by_commune:
            result[beneficiaire_id][ELUS] |= elus_of_commune[commune_id]
        by_epci = Role.objects.filter(
            kind=Role.Kind.ELU, user__is_active=True, epci__isnull=False
        ).values_list("epci_id", "user_id")
        elus_of_epci: dict[str, set[int]] = defaultdict(set)
        for epci_id, user_id in by_epci:
            elus_of_epci[epci_id].add(user_id)
        if elus_of_epci:
            for beneficiaire_id, epci_id in beneficiaires.filter(
                epci_id__in=elus_of_epci
            ).values_list("pk", "epci_id"):
                result[beneficiaire_id][ELUS] |= elus_of_epci[epci_id]
    if PREFECTURE in audiences:
        prefets: dict[str, set[int]] = defaultdict(set)
        for departement_id, user_id in Role.departements.through.objects.filter(
            role__kind=Role.Kind.PREFECTURE, **active
        ).values_list("departement_id", "role__user_id"):
            prefets[departement_id].add(user_id)
        if prefets:
            for beneficiaire_id, departement_id in beneficiaires.filter(
                departement_id__in=prefets
            ).values_list("pk", "departement_id"):
                result[beneficiaire_id][PREFECTURE] |= prefets[departement_id]
    return result


def territory_reminder_recipients(
    departement_codes=(), region_codes=()
) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """({département: user ids}, {région: user ids}): who is told about an instance of a
    département (CLCT…) — its préfecture — or of a région (comité des financeurs) — the
    préfectures of its départements, who keep it (``may_manage_instance``). Inactive
    accounts receive nothing."""
    from pvd.models import Role

    Departement = apps.get_model("communes", "Departement")
    wanted = Departement.objects.filter(
        Q(code__in=departement_codes) | Q(region_id__in=region_codes)
    )
    par_departement: dict[str, set[int]] = defaultdict(set)
    par_region: dict[str, set[int]] = defaultdict(set)
    rows = Role.departements.through.objects.filter(
        role__kind=Role.Kind.PREFECTURE, role__user__is_active=True, departement__in=wanted
    ).values_list("departement_id", "departement__region_id", "role__user_id")
    for departement_id, region_id, user_id in rows:
        if departement_id in departement_codes:
            par_departement[departement_id].add(user_id)
        if region_id in region_codes:
            par_region[region_id].add(user_id)
    return par_departement, par_region
