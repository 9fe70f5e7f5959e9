"""The convocation: one e-mail per member with an address, with the meeting's invitation
(.ics, gouvernance/ics.py) attached; sent at once, the meeting remembers when."""

from email.utils import parseaddr

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.urls import reverse

from pvd.bounds import une_ligne
from pvd.french import date_longue

from . import ics
from .models import Reunion

SANS_DESTINATAIRE = (
    "Aucun membre de l'instance n'a d'adresse électronique : ajoutez les membres et leur "
    "courriel avant d'envoyer la convocation."
)


def convoquer(reunion: Reunion) -> int:
    """Send the convocation to every member with an address; the number of e-mails sent."""
    if reunion.statut != Reunion.Statut.PREVUE:
        raise ValidationError("Seule une réunion prévue peut être convoquée.")
    membres = [m for m in reunion.instance.membres.select_related("user") if m.adresse]
    if not membres:
        raise ValidationError(SANS_DESTINATAIRE)
    organisateur = parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or "ne-pas-repondre@localhost"
    lien = settings.PVD_BASE_URL.rstrip("/") + reverse("gouvernance:reunion", args=[reunion.pk])
    context = {
        "reunion": reunion,
        "instance": reunion.instance,
        "points": list(reunion.points.all()),
        "lien": lien,
    }
    texte = render_to_string("gouvernance/email/convocation.txt", context)
    invitation = ics.invitation(
        reunion, organisateur, texte, sequence=1 if reunion.convoquee_le else 0
    )
    sujet = f"Convocation : {reunion.instance.nom}, le {date_longue(reunion.date)}"
    connection = get_connection()
    messages = []
    for membre in membres:
        message = EmailMultiAlternatives(
            subject=une_ligne(sujet),
            body=texte,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[membre.adresse],
            connection=connection,
        )
        message.attach("invitation.ics", invitation, "text/calendar; method=REQUEST")
        messages.append(message)
    sent = connection.send_messages(messages) or 0
    reunion.mark_convoked()
    return sent
