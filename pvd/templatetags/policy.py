"""The policy in templates: `{% policy "may_mark_signed" convention as may_sign %}`."""

from django import template

from pvd import policy as rules

register = template.Library()


@register.simple_tag(takes_context=True)
def policy(context: template.Context, question: str, *args) -> bool:
    """The answer of pvd.policy.<question> (a may_… or is_… function) for the page's user."""
    if not question.startswith(("may_", "is_")) or not hasattr(rules, question):
        raise template.TemplateSyntaxError(f"pvd.policy has no question {question!r}.")
    user = context["request"].user
    return user.is_authenticated and getattr(rules, question)(user, *args)
