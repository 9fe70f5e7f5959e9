from django import forms
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from dsfr.forms import DsfrBaseForm

from pvd.bounds import une_ligne
from pvd.models import User

from .models import MESSAGES_PAR_JOUR, MessageClub

TROP_DE_MESSAGES = (
    f"Vous avez déjà envoyé {MESSAGES_PAR_JOUR} messages par le Club ces dernières 24 heures : "
    "réessayez demain."
)


def presentation(user: User) -> str:
    """Who the sender is and where they work, as the recipient reads it."""
    roles = ", ".join(str(role) for role in user.roles.all())
    name = user.get_full_name() or "Un membre du programme"
    return f"{name} ({roles})" if roles else name


class ContactForm(DsfrBaseForm, forms.ModelForm):
    """A message to a chef de projet of the annuaire, e-mailed by the portal."""

    class Meta:
        model = MessageClub
        fields = ["objet", "texte"]
        widgets = {"texte": forms.Textarea(attrs={"rows": 8})}

    def __init__(self, *args, expediteur: User, destinataire: User, fiche=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.expediteur = expediteur
        self.instance.destinataire = destinataire
        self.instance.fiche = fiche
        if fiche is not None and not self.is_bound:
            self.initial.setdefault("objet", une_ligne(f"Votre fiche « {fiche.titre} »")[:200])

    def save(self, commit: bool = True) -> MessageClub:
        """Count, record and send in one transaction: the sender's row is locked so that two
        messages sent at once cannot both pass the limit; a failed e-mail records nothing."""
        message = self.instance
        with transaction.atomic():
            User.objects.select_for_update().filter(pk=message.expediteur.pk).first()
            if MessageClub.objects.recents(message.expediteur).count() >= MESSAGES_PAR_JOUR:
                raise ValidationError(TROP_DE_MESSAGES)
            message.save()
            envoyer(message)
        return message


def envoyer(message: MessageClub) -> None:
    expediteur = message.expediteur
    about = f" au sujet de votre fiche action « {message.fiche.titre} »" if message.fiche else ""
    body = (
        f"{presentation(expediteur)} vous écrit par le Club Petites villes de demain{about}.\n\n"
        f"{message.texte}\n\n"
        "—\n"
        "Pour répondre, répondez simplement à ce courriel : votre réponse ira à l’expéditeur. "
        "Vous recevez ce message parce que vous figurez dans l’annuaire du Club ; vous pouvez "
        "en sortir depuis la page « Mon profil Club » du portail."
    )
    EmailMessage(
        subject=une_ligne(f"[Club PVD] {message.objet}"),
        body=body,
        to=[message.destinataire.email],
        reply_to=[expediteur.email],
    ).send(fail_silently=False)


class ProfilClubForm(DsfrBaseForm, forms.ModelForm):
    annuaire = forms.BooleanField(
        label="Figurer dans l’annuaire du Club",
        required=False,
        help_text=User._meta.get_field("annuaire_club").help_text,
    )

    class Meta:
        model = User
        fields: list[str] = []

    def __init__(self, *args, listed: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["annuaire"].initial = listed

    def save(self, commit: bool = True) -> User:
        self.instance.annuaire_club = self.cleaned_data["annuaire"]
        self.instance.save(update_fields=["annuaire_club"])
        return self.instance
