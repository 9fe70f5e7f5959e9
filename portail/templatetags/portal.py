"""The header, the footer and the assets of every page, rendered once per kind of page and kept.

They are most of what a simple page renders (some twenty URLs, a few rights), yet they
depend only on the page (its URL name), the reader's rights to the menu's sections, and three
things of the reader's own: their name, their unread count and the logout form's CSRF token.
So each is rendered once per process for each page and set of rights (no reader's data in
it) and kept; the reader's own are written into the slots left for them, escaped, at every
request. The assets (django-dsfr's stylesheets, favicons, theme dialog and scripts, the
portal's own) are the same on every page and every reader. With DEBUG on, templates are read
again at each request: nothing is kept then.
"""

from functools import lru_cache

from django import template
from django.conf import settings
from django.template.backends.utils import csrf_input
from django.template.loader import render_to_string
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

from pvd import policy
from pvd.context_processors import portal
from rappels.inbox import unread_count, unread_key

register = template.Library()

# Where the reader's own values go in a kept header: HTML comments, never in a user's text
# once escaped (a user's « <!-- » becomes « &lt;!-- »).
NAME, UNREAD, CSRF = "<!--pvd:name-->", "<!--pvd:unread-->", "<!--pvd:csrf-->"
KEPT = 512  # pages × sets of rights, a few KB each


def _page(request) -> tuple[str | None, str | None]:
    match = getattr(request, "resolver_match", None)
    return (match.url_name, match.namespace) if match else (None, None)


def _render_header(url_name, namespace, logged_in, sees_communes, synthese, access) -> str:
    return render_to_string(
        "includes/header.html",
        {
            **portal(None),
            "url_name": url_name,
            "namespace": namespace,
            "logged_in": logged_in,
            "sees_communes": sees_communes,
            "may_see_synthese": synthese,
            "may_manage_access": access,
            "user_name": mark_safe(NAME),
            "unread_badge": mark_safe(UNREAD),
            "csrf_input": mark_safe(CSRF),
        },
    )


_kept_header = lru_cache(maxsize=KEPT)(_render_header)


@register.simple_tag(takes_context=True)
def portal_header(context) -> SafeString:
    request = context.get("request")
    user = getattr(request, "user", None)  # none on a 404 answered before authentication
    logged_in = user is not None and user.is_authenticated
    # The perimeter (for the rights) and the unread count in one round trip to the cache, or
    # the count read with the page's other entries (``lues``: the préfecture's home).
    lues = context.get("lues")
    if logged_in and lues is not None and unread_key(user) in lues.asked:
        prefetched = lues
    else:
        prefetched = user.prefetch(unread_key(user)) if logged_in else None
    rights = (
        (
            not policy.is_without_territory(user),
            policy.may_see_synthese(user),
            policy.may_manage_access(user),
        )
        if logged_in
        else (False, False, False)
    )
    render = _render_header if settings.DEBUG else _kept_header
    html = render(*_page(request), logged_in, *rights)
    if not logged_in:
        return mark_safe(html)
    unread = unread_count(user, prefetched)
    badge = (
        format_html(
            ' <span class="fr-badge fr-badge--sm fr-badge--new fr-ml-1w">{}'
            '<span class="fr-sr-only"> non lue{}</span></span>',
            unread,
            "s" if unread > 1 else "",
        )
        if unread
        else ""
    )
    return mark_safe(
        html.replace(NAME, conditional_escape(user.get_full_name() or user.email))
        .replace(UNREAD, badge)
        .replace(CSRF, csrf_input(request))
    )


def _render_footer(url_name) -> str:
    return render_to_string("includes/footer.html", {"url_name": url_name})


_kept_footer = lru_cache(maxsize=KEPT)(_render_footer)


@register.simple_tag(takes_context=True)
def portal_footer(context) -> SafeString:
    render = _render_footer if settings.DEBUG else _kept_footer
    return mark_safe(render(_page(context.get("request"))[0]))


ASSETS = {"dsfr_head", "pvd_css", "theme_modale", "dsfr_js", "pvd_js"}


def _render_assets(name: str) -> str:
    if name not in ASSETS:
        raise template.TemplateSyntaxError(f"portal_assets: unknown assets {name!r}")
    return render_to_string(f"includes/assets/{name}.html")


_kept_assets = lru_cache(maxsize=len(ASSETS))(_render_assets)


@register.simple_tag
def portal_assets(name: str) -> SafeString:
    """includes/assets/<name>.html: the same for every page and every reader."""
    render = _render_assets if settings.DEBUG else _kept_assets
    return mark_safe(render(name))
