from django import forms
from dsfr.forms import DsfrBaseForm

from pvd.integrity import JetonForm
from pvd.models import User

from .models import CleApi


class CleApiForm(JetonForm, DsfrBaseForm, forms.ModelForm):
    user = forms.ModelChoiceField(
        label="Agit en tant que",
        help_text="Le compte dont la clé lit les données : son rôle et son territoire "
        "(souvent un compte partenaire).",
        queryset=User.objects.filter(is_active=True, roles__isnull=False)
        .distinct()
        .order_by("email"),
    )

    class Meta:
        model = CleApi
        fields = ["organisation", "user"]
