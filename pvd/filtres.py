"""Filters shared by the lists: a choice among the reader's régions or départements whose
options are read only when the form needs them (a list whose form comes from the cache,
pvd/fragments.py ``filter_key``, builds none)."""

from collections.abc import Callable

import django_filters
from django import forms
from django.db.models import QuerySet


class ChoixDuPerimetre(django_filters.fields.ModelChoiceIterator):
    """The options of a ``ChampDuPerimetre``: its queryset is read when they are iterated."""

    def __init__(self, field, *args):
        self.field = field

    @property
    def queryset(self) -> QuerySet:
        return self.field.queryset


class ChampDuPerimetre(django_filters.fields.ModelChoiceField):
    """A choice among the reader's régions or départements whose queryset (``lire``: the
    model's ``for_user``) is built only when the form needs it, to check a value or to write
    the options: a list without that filter whose form comes from the cache
    (pvd/fragments.py) builds none. ``cle_des_choix`` says what the options depend on (the
    reader's perimeter) to the form's cache key."""

    iterator = ChoixDuPerimetre

    def __init__(self, *args, lire: Callable[[], QuerySet], cle_des_choix: str, **kwargs):
        self.lire, self.cle_des_choix = lire, cle_des_choix
        super().__init__(*args, queryset=None, **kwargs)

    def _get_queryset(self) -> QuerySet:
        if self._queryset is None:
            self._queryset = self.lire()
        return self._queryset

    queryset = property(_get_queryset, forms.ModelChoiceField._set_queryset)

    def __deepcopy__(self, memo):
        result = forms.Field.__deepcopy__(self, memo)
        result._queryset = None if self._queryset is None else self._queryset.all()
        result.widget.choices = result.choices
        return result


class FiltreDuPerimetre(django_filters.ModelChoiceFilter):
    field_class = ChampDuPerimetre
