"""``{% cache_lu timeout name vary_on… %}…{% endcache_lu %}``: the ``{% cache %}`` tag (same
arguments, same key, same cache) for a page that read its fragments with its other cache
entries (``lues`` in the context: tableaux/cache.py ``Lues``, the préfecture's home). The
fragment is taken from what the page read, and, rendered on a miss, written with the page's
other entries (``Lues.keep``). Without ``lues``, or when fragments have a cache of their own,
it is the ``{% cache %}`` tag."""

from django import template
from django.core.cache import caches
from django.core.cache.utils import make_template_fragment_key
from django.templatetags.cache import CacheNode

from actions.plan_cache import fragment_cache

register = template.Library()


class CacheLuNode(CacheNode):
    def render(self, context):
        lues = context.get("lues")
        if lues is None or fragment_cache() is not caches["default"]:
            return super().render(context)
        vary_on = [var.resolve(context) for var in self.vary_on]
        key = make_template_fragment_key(self.fragment_name, vary_on)
        value = lues.get_entry(key)
        if value is None:
            value = self.nodelist.render(context)
            lues.keep(key, value, int(self.expire_time_var.resolve(context)))
        return value


@register.tag("cache_lu")
def do_cache_lu(parser, token):
    nodelist = parser.parse(("endcache_lu",))
    parser.delete_first_token()
    tokens = token.split_contents()
    if len(tokens) < 3:
        raise template.TemplateSyntaxError(f"'{tokens[0]}' tag requires at least 2 arguments.")
    return CacheLuNode(
        nodelist,
        parser.compile_filter(tokens[1]),
        tokens[2],
        [parser.compile_filter(token) for token in tokens[3:]],
        None,
    )
