"""The e-mails: one reminder, or a digest grouped by beneficiary; French, HTML and text.

Each carries a signed one-click unsubscribe link for its category (or categories, for a
digest) that works without logging in, and the matching ``List-Unsubscribe`` headers.
"""

from functools import lru_cache
from itertools import groupby
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from pvd.bounds import une_ligne

SALT = "rappels.desabonnement"


def stable_message_id(kind: str, pk: int) -> str:
    """The same Message-ID each time this row's e-mail is sent: an e-mail sent again after a
    lease (its worker died before marking it sent) is recognised as one by mail clients."""
    domain = urlsplit(settings.PVD_BASE_URL).hostname or "localhost"
    return f"<pvd-{kind}-{pk}@{domain}>"


def unsubscribe_token(user_id: int, categories: list[str]) -> str:
    return signing.dumps({"u": user_id, "c": sorted(categories)}, salt=SALT, compress=True)


def read_unsubscribe_token(token: str) -> tuple[int, list[str]]:
    """Raises signing.BadSignature when the link was altered."""
    data = signing.loads(token, salt=SALT)
    return int(data["u"]), list(data["c"])


def absolute(path: str) -> str:
    return settings.PVD_BASE_URL.rstrip("/") + path


def by_beneficiaire(rappels) -> list[tuple[str, list]]:
    """Grouped by beneficiary (or département, région: Rappel.territoire_nom)."""
    rappels = sorted(rappels, key=lambda r: (r.territoire_nom, r.echeance, r.pk))
    return [(nom, list(items)) for nom, items in groupby(rappels, key=lambda r: r.territoire_nom)]


@lru_cache
def _page(name: str) -> str:
    return absolute(reverse(name))


@lru_cache
def _unsubscribe_pattern() -> str:
    return absolute(reverse("rappels:desabonnement", args=["TOKEN"]))


def build(
    user,
    rappels,
    categories: list[str],
    subject: str,
    intro: str,
    connection=None,
    message_id: str | None = None,
) -> EmailMultiAlternatives:
    token = unsubscribe_token(user.pk, categories)
    unsubscribe = _unsubscribe_pattern().replace("TOKEN", token)
    context = {
        "user": user,
        "intro": intro,
        "groupes": [
            (nom, [(r, absolute(r.lien)) for r in items]) for nom, items in by_beneficiaire(rappels)
        ],
        "desabonnement": unsubscribe,
        "preferences": _page("rappels:preferences"),
        "notifications": _page("rappels:list"),
    }
    headers = {
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    if message_id:
        headers["Message-ID"] = message_id
    message = EmailMultiAlternatives(
        subject=une_ligne(subject),
        body=render_to_string("rappels/email/rappels.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        connection=connection,
        headers=headers,
    )
    message.attach_alternative(render_to_string("rappels/email/rappels.html", context), "text/html")
    return message
