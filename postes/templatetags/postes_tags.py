from django import template
from django.db.models import DateField, IntegerField, Prefetch, QuerySet
from django.utils import timezone

from pvd import french, policy
from pvd.db import Parametre, Preparee

from ..models import Occupation, Poste, actuelle_q

register = template.Library()


@register.inclusion_tag("postes/includes/chefs_de_projet.html", takes_context=True)
def chefs_de_projet(context, beneficiaire):
    """The beneficiary's posts and who holds them, on its page and its plan."""
    user = context["request"].user
    today = timezone.localdate()
    postes = (
        Poste.objects.for_user(user)
        .filter(beneficiaires=beneficiaire)
        .prefetch_related(
            Prefetch(
                "occupations",
                Occupation.objects.actuelles(today),
                to_attr="actuelles",
            )
        )
    )
    return {
        "beneficiaire": beneficiaire,
        "postes": postes,
        "may_create": policy.may_manage_posts(user, {beneficiaire.departement_id}),
    }


def _en_poste(_variante) -> QuerySet:
    """Who holds a beneficiary's posts on a day, by name: prepared (pvd/db.py ``Preparee``),
    building and compiling its joins cost several times what PostgreSQL takes to run it."""
    return (
        Occupation.objects.filter(actuelle_q(Parametre("jour", DateField())))
        .filter(poste__beneficiaires=Parametre("beneficiaire", IntegerField()))
        .order_by("nom", "prenom")
        .values_list("prenom", "nom")
    )


EN_POSTE = Preparee(_en_poste)


@register.simple_tag
def chef_de_projet_en_poste(beneficiaire) -> str:
    """« Léa Durand, Marc Petit », or an empty string: who holds the beneficiary's posts today.
    ``beneficiaire`` was read through ``for_user``: a post is readable by whoever reads one
    of its beneficiaries (``PosteQuerySet.for_user``), so all of its posts are."""
    rows = EN_POSTE.lignes(beneficiaire=beneficiaire.pk, jour=timezone.localdate())
    return ", ".join(f"{prenom} {nom}" for prenom, nom in rows)


# « 1er juin 2021 », « 15 mars 2021 ».
register.filter("date_longue", french.date_longue)
