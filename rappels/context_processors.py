from .models import Rappel


def notifications(request) -> dict:
    """The unread count of the header, asked only when a template reads it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"notifications_non_lues": lambda: Rappel.objects.for_user(user).non_lus().count()}
