from django import template
from django.db.models import Prefetch
from django.utils import timezone

from pvd import french, policy

from ..models import Occupation, Poste

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


@register.simple_tag(takes_context=True)
def chef_de_projet_en_poste(context, beneficiaire) -> str:
    """« Léa Durand, Marc Petit », or an empty string: who holds the beneficiary's posts today."""
    today = timezone.localdate()
    occupations = Occupation.objects.actuelles(today).filter(
        poste__in=Poste.objects.for_user(context["request"].user).filter(
            beneficiaires=beneficiaire
        ),
    )
    return ", ".join(o.nom_complet for o in occupations.order_by("nom", "prenom"))


# « 1er juin 2021 », « 15 mars 2021 ».
register.filter("date_longue", french.date_longue)
