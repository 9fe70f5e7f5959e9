from django import forms
from dsfr.forms import DsfrBaseForm

from .models import Categorie, Frequence


class PreferencesForm(DsfrBaseForm):
    """One choice of frequency per category."""

    def __init__(self, *args, initial_frequences: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        for categorie in Categorie:
            self.fields[categorie.value] = forms.ChoiceField(
                label=categorie.label,
                choices=Frequence.choices,
                initial=initial_frequences[categorie.value],
                # A class of its own keeps django-dsfr from adding its invalid `dsfr` attribute.
                widget=forms.RadioSelect(attrs={"class": "pvd-frequence"}),
                error_messages={
                    "required": "Choisissez une fréquence pour cette catégorie.",
                    "invalid_choice": "Choisissez une des fréquences proposées.",
                },
            )
