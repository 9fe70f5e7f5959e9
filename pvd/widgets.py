"""Widgets written in Python where Django's templates cost: a select renders one template per
option (and one more for its attributes), 0.2 to 0.5 ms each; the Club's filters hold about
250 options (départements, régions, funders), which cost more than its search. A text input
renders two templates (``input.html``, ``attrs.html``)."""

from html import escape

from django.forms import Select, TextInput
from django.utils.html import format_html
from django.utils.safestring import SafeString

OPTION = '<option value="{}">{}</option>'
SELECTED = '<option value="{}" selected>{}</option>'


def echapper(value) -> str:
    """``value`` escaped as ``format_html`` would (``conditional_escape``: markup marked safe
    kept as it is), without its cost (a lazy-string check on each call)."""
    if hasattr(value, "__html__"):
        return str(value.__html__())
    return escape(str(value))


def attributs(attrs: dict) -> str:
    """Django's ``flatatt``, the same markup (pairs sorted, then the true booleans sorted),
    written with ``echapper``: a render of the Club's filters writes some forty of them."""
    paires = sorted((k, v) for k, v in attrs.items() if v is not None and not isinstance(v, bool))
    booleens = sorted(k for k, v in attrs.items() if v is True)
    return "".join(f' {echapper(k)}="{echapper(v)}"' for k, v in paires) + "".join(
        f" {echapper(k)}" for k in booleens
    )


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
        # Each option's markup is escaped already (``__init__``): joined as it is.
        return SafeString(
            "".join(choisie if value in selected else une for value, une, choisie in self.options)
        )


class SelectRapide(Select):
    """Django's ``Select``, the same markup (``select.html``, ``select_option.html``), without
    a template per option: written in Python, every value and label escaped (``echapper``);
    options written once (``OptionsEcrites``) are joined as they are."""

    def render(self, name, value, attrs=None, renderer=None):
        selected = set(self.format_value(value))
        attributes = attributs(self.build_attrs(self.attrs, attrs))
        ecrites = getattr(self.choices, "ecrites", None)
        if ecrites is not None:
            options = ecrites().ecrire(selected)
        else:
            markup = []
            for group_value, group_label in self.choices:
                if isinstance(group_label, (list, tuple)):
                    markup.append(f'<optgroup label="{echapper(group_value)}">')
                    self.options(group_label, selected, markup)
                    markup.append("</optgroup>")
                else:
                    self.options([(group_value, group_label)], selected, markup)
            options = "".join(markup)
        return SafeString(f'<select name="{echapper(name)}"{attributes}>{options}</select>')

    @staticmethod
    def options(choices, selected: set[str], markup: list[str]) -> None:
        for option_value, label in choices:
            option_value = "" if option_value is None else str(option_value)
            choisie = " selected" if option_value in selected else ""
            markup.append(
                f'<option value="{echapper(option_value)}"{choisie}>{echapper(label)}</option>'
            )


class TexteRapide(TextInput):
    """Django's ``TextInput``, the same markup (``input.html``), written in Python."""

    def render(self, name, value, attrs=None, renderer=None):
        value = self.format_value(value)
        attributes = attributs(self.build_attrs(self.attrs, attrs))
        debut = f'<input type="{echapper(self.input_type)}" name="{echapper(name)}"'
        valeur = "" if value is None else f' value="{echapper(value)}"'
        return SafeString(f"{debut}{valeur}{attributes}>")
