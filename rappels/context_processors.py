from .inbox import unread_count


def notifications(request) -> dict:
    """The unread count of the header, asked only when a template reads it (and cached)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"notifications_non_lues": lambda: unread_count(user)}
