"""Who may do what: one named function per question, over the user's perimeter."""

from communes.models import normalize

from .models import Role

# Posts of chefs de projet -------------------------------------------------------------------
# Reading goes through Poste.objects.for_user(user); these answer the other questions.


def may_manage_posts(user, departement_codes) -> bool:
    """Create and edit posts, occupations and co-financing: national staff, or the
    préfecture of (one of) the département(s) of the post's beneficiaries."""
    perimeter = user.perimeter
    if perimeter.national:
        return True
    return bool(set(departement_codes) & perimeter.prefecture_departement_codes)


def may_manage_post(user, poste) -> bool:
    return may_manage_posts(user, poste.departement_codes)


def may_manage_cofinancing_rules(user) -> bool:
    """The programme's rules are national: only ANCT staff add or close them."""
    return user.perimeter.national


def may_invite_chef_de_projet(user, poste) -> bool:
    return may_manage_post(user, poste)


def visible_funders(user) -> set[str] | None:
    """Funders whose co-financing lines the user reads; None for all of them.

    A partner reads its own organisation's lines only; the State, the chef de projet and the
    élus read every line of the posts they see.
    """
    from postes.models import Financeur

    if user.perimeter.national or user.perimeter.prefecture_departement_codes:
        return None
    kinds = user.role_kinds
    if kinds & {Role.Kind.CHEF_PROJET, Role.Kind.ELU}:
        return None
    organisations = {
        normalize(o)
        for o in user.roles.filter(kind=Role.Kind.PARTENAIRE).values_list("organisation", flat=True)
    }
    return {
        f.value
        for f in Financeur
        if normalize(f.label) in organisations
        or any(normalize(f.label.split(" (")[0]) == o for o in organisations)
    }
