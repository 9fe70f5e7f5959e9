"""How each person receives each category by e-mail: their choice, or their role's default."""

from collections import defaultdict

from pvd.models import Role

from .models import Categorie, Frequence, Preference

# The most frequent first: a person with two roles gets the more frequent default.
ORDRE = [Frequence.IMMEDIAT, Frequence.QUOTIDIEN, Frequence.HEBDOMADAIRE, Frequence.AUCUN]

DEFAUTS = {
    # The chef de projet acts on conventions and posts at once; fiches come in a daily digest.
    Role.Kind.CHEF_PROJET: {
        Categorie.CONVENTIONS: Frequence.IMMEDIAT,
        Categorie.PLANS: Frequence.QUOTIDIEN,
        Categorie.POSTES: Frequence.IMMEDIAT,
        Categorie.GOUVERNANCE: Frequence.QUOTIDIEN,
    },
    # The élus and the préfecture follow: a weekly digest.
    Role.Kind.ELU: dict.fromkeys(Categorie, Frequence.HEBDOMADAIRE),
    Role.Kind.PREFECTURE: dict.fromkeys(Categorie, Frequence.HEBDOMADAIRE),
    Role.Kind.NATIONAL: dict.fromkeys(Categorie, Frequence.AUCUN),
    Role.Kind.PARTENAIRE: dict.fromkeys(Categorie, Frequence.AUCUN),
}


def defaults_for(kinds) -> dict[str, str]:
    result = {}
    for categorie in Categorie:
        choices = [DEFAUTS[kind][categorie] for kind in kinds] or [Frequence.AUCUN]
        result[categorie.value] = min(choices, key=ORDRE.index).value
    return result


def frequences(user_ids) -> dict[int, dict[str, str]]:
    """{user id: {category: frequency}} in two queries, whatever the number of users."""
    kinds: dict[int, set[str]] = defaultdict(set)
    for user_id, kind in Role.objects.filter(user_id__in=user_ids).values_list("user_id", "kind"):
        kinds[user_id].add(kind)
    result = {user_id: defaults_for(kinds[user_id]) for user_id in user_ids}
    for user_id, categorie, frequence in Preference.objects.filter(
        utilisateur_id__in=user_ids
    ).values_list("utilisateur_id", "categorie", "frequence"):
        result[user_id][categorie] = frequence
    return result


def set_frequence(user, categorie: str, frequence: str) -> None:
    Preference.objects.update_or_create(
        utilisateur=user, categorie=categorie, defaults={"frequence": frequence}
    )
