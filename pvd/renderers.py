"""The form renderer: django-dsfr's, reading the project's templates/ first, so that
templates/dsfr/form_field_snippets/ can replace one of its field snippets."""

from django.conf import settings
from django.utils.functional import cached_property
from dsfr.forms import DsfrDjangoTemplates


class FormRenderer(DsfrDjangoTemplates):
    @cached_property
    def engine(self):
        engine = super().engine
        engine.engine.dirs = [*settings.TEMPLATES[0]["DIRS"], *engine.engine.dirs]
        return engine
