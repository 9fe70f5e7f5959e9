"""Widgets written in Python where Django's templates cost: a select renders one template per
option (and one more for its attributes), 0.2 to 0.5 ms each; the Club's filters hold about
250 options (départements, régions, funders), which cost more than its search. A text input
renders two templates (``input.html``, ``attrs.html``)."""

from django.forms import Select, TextInput
from django.utils.html import format_html
from django.utils.safestring import SafeString

OPTION = '<option value="{}">{}</option>'
SELECTED = '<option value="{}" selected>{}</option>'


def attributs(attrs: dict) -> SafeString:
    """Django's ``flatatt``, the same markup (pairs sorted, then the true booleans sorted), in
    one ``format_html`` (``flatatt`` calls ``format_html`` for each attribute)."""
    paires = sorted((k, v) for k, v in attrs.items() if v is not None and not isinstance(v, bool))
    booleens = sorted(k for k, v in attrs.items() if v is True)
    markup = ' {}="{}"' * len(paires) + " {}" * len(booleens)
    if not markup:
        return format_html("{}", "")
    return format_html(markup, *(x for paire in paires for x in paire), *booleens)


class OptionsEcrites:
    """A select's options written once, escaped (each option's markup, selected or not), for
    a list a process keeps (club/filters.py): a render then joins them, escaping nothing.
    Iterated, the (value, label) pairs, as any select's choices."""

    def __init__(self, choices):
        self.choices = [("" if value is None else str(value), label) for value, label in choices]
        self.options = [
            (value, format_html(OPTION, value, label), format_html(SELECTED, value, label))
            for value, label in self.choices
        ]
        # Nothing chosen, the common case (the first option, « Tous », selected): kept.
        self.vide = {chosen: self.joindre(chosen) for chosen in (frozenset(), frozenset({""}))}

    def __iter__(self):
        return iter(self.choices)

    def __len__(self) -> int:
        return len(self.choices)

    def ecrire(self, selected: set[str]) -> SafeString:
        kept = self.vide.get(frozenset(selected))
        return kept if kept is not None else self.joindre(selected)

    def joindre(self, selected) -> SafeString:
        parts = [choisie if value in selected else une for value, une, choisie in self.options]
        return format_html("{}" * len(parts), *parts)


class SelectRapide(Select):
    """Django's ``Select``, the same markup (``select.html``, ``select_option.html``), without
    a template per option: one ``format_html`` for the whole list, which escapes every value
    and label (the format itself holds only the markup written here); options written once
    (``OptionsEcrites``) are joined as they are."""

    def render(self, name, value, attrs=None, renderer=None):
        selected = set(self.format_value(value))
        attributes = attributs(self.build_attrs(self.attrs, attrs))
        ecrites = getattr(self.choices, "ecrites", None)
        if ecrites is not None:
            return format_html(
                '<select name="{}"{}>{}</select>', name, attributes, ecrites().ecrire(selected)
            )
        markup, args = ['<select name="{}"{}>'], [name, attributes]
        for group_value, group_label in self.choices:
            if isinstance(group_label, (list, tuple)):
                markup.append('<optgroup label="{}">')
                args.append(group_value)
                self.options(group_label, selected, markup, args)
                markup.append("</optgroup>")
            else:
                self.options([(group_value, group_label)], selected, markup, args)
        markup.append("</select>")
        return format_html("".join(markup), *args)

    @staticmethod
    def options(choices, selected: set[str], markup: list[str], args: list) -> None:
        for option_value, label in choices:
            option_value = "" if option_value is None else str(option_value)
            markup.append(SELECTED if option_value in selected else OPTION)
            args += [option_value, label]


class TexteRapide(TextInput):
    """Django's ``TextInput``, the same markup (``input.html``), written in Python."""

    def render(self, name, value, attrs=None, renderer=None):
        value = self.format_value(value)
        attributes = attributs(self.build_attrs(self.attrs, attrs))
        if value is None:
            return format_html('<input type="{}" name="{}"{}>', self.input_type, name, attributes)
        return format_html(
            '<input type="{}" name="{}" value="{}"{}>', self.input_type, name, value, attributes
        )
