"""``{{ widget.optgroups|options }}``: a select's options written in Python.

Django renders each <option> through its own template (select_option.html, attrs.html):
a hundred départements in a filter form cost more than the rest of a list page. The
markup is the same; every value and label is escaped (format_html).
"""

from django import template
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()


@register.filter
def options(optgroups) -> SafeString:
    parts = []
    for group_name, group_choices, _index in optgroups:
        if group_name:
            parts.append(format_html('<optgroup label="{}">', group_name))
        for option in group_choices:
            parts.append(
                format_html(
                    '<option value="{}"{}>{}</option>',
                    str(option["value"]),
                    flatatt(option["attrs"]),
                    option["label"],
                )
            )
        if group_name:
            parts.append(format_html("</optgroup>"))
    return format_html_join("", "{}", ((part,) for part in parts))
