"""The chef de projet's portal account: opened when they take the post, closed when they leave."""

from datetime import date

from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from pvd.models import Role, User

from .models import Occupation


def open_account(occupation: Occupation, user: User | None, request) -> Role:
    """Give the person the chef de projet role on the post's beneficiaries, and invite them.

    An existing account (a chef de projet elsewhere) is reused; a new one has no password
    until its owner chooses one through the link of the invitation.
    """
    if user is None:
        user = User.objects.create_user(
            email=occupation.email, first_name=occupation.prenom, last_name=occupation.nom
        )
    poste = occupation.poste
    role = Role.objects.create(
        user=user,
        kind=Role.Kind.CHEF_PROJET,
        fonction=poste.intitule[:150],
        organisation=poste.employeur_nom[:150],
    )
    role.beneficiaires.set(poste.beneficiaires.all())
    occupation.role = role
    occupation.save(update_fields=["role"])
    new_account = not user.has_usable_password()
    transaction.on_commit(lambda: send_invitation(request, occupation, user, new_account))
    return role


def send_invitation(request, occupation: Occupation, user: User, new_account: bool) -> None:
    if new_account:
        path = reverse(
            "account_reset_password_from_key",
            kwargs={
                "uidb36": user_pk_to_url_str(user),
                "key": default_token_generator.make_token(user),
            },
        )
    else:
        path = reverse("account_login")
    link = request.build_absolute_uri(path)
    context = {
        "occupation": occupation,
        "poste": occupation.poste,
        "beneficiaires": list(occupation.poste.beneficiaires.all()),
        "link": link,
        "new_account": new_account,
        "contact": settings.CONTACT_EMAIL,
    }
    send_mail(
        subject="Votre accès au portail Petites villes de demain",
        message=render_to_string("postes/email/invitation.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )


def end_role_if_due(occupation: Occupation, today: date) -> bool:
    """The role opened for an occupation ends on the day the person leaves."""
    if occupation.role_id is None or occupation.date_fin is None or occupation.date_fin > today:
        return False
    role = occupation.role
    occupation.role = None
    occupation.save(update_fields=["role"])
    role.delete()
    return True


def end_due_roles(today: date) -> int:
    """Daily: close the roles of the people whose departure day has come."""
    ended = 0
    for occupation in Occupation.objects.filter(
        role__isnull=False, date_fin__lte=today
    ).select_related("role"):
        with transaction.atomic():
            ended += end_role_if_due(occupation, today)
    return ended
