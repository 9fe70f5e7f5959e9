import django_filters
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

from communes.models import Departement
from pvd.audit import EVENTS
from pvd.models import Role, User


class UserFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(label="Nom ou adresse électronique", method="search")
    role = django_filters.ChoiceFilter(
        label="Rôle",
        choices=Role.Kind.choices,
        field_name="roles__kind",
        distinct=True,
        empty_label="Tous",
    )
    departement = django_filters.ModelChoiceFilter(
        label="Département",
        queryset=Departement.objects.all(),
        method="in_departement",
        empty_label="Tous",
    )

    class Meta:
        model = User
        fields: list[str] = []

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(email__icontains=value)
            | Q(first_name__icontains=value)
            | Q(last_name__icontains=value)
        )

    def in_departement(self, queryset, name, value):
        return queryset.filter(
            Q(roles__departements=value) | Q(roles__communes__departement=value)
        ).distinct()


def audited_content_types(request):
    return ContentType.objects.filter(
        app_label__in=["pvd", "communes", "conventions", "actions"]
    ).order_by("model")


# The journal's event types: the security events of pvd.audit, and two kinds of changes
# national staff look for (the funder catalogue, the perimeters given to roles).
EVENT_CHOICES = [
    *EVENTS.items(),
    ("financeurs", "Catalogue des financeurs"),
    ("roles", "Rôles et périmètres (bénéficiaires suivis)"),
]
EVENT_MODELS = {"financeurs": ("actions", "financeur"), "roles": ("pvd", "role")}


class LogEntryFilter(django_filters.FilterSet):
    evenement = django_filters.ChoiceFilter(
        label="Type d'événement", choices=EVENT_CHOICES, method="of_event", empty_label="Tous"
    )
    content_type = django_filters.ModelChoiceFilter(
        label="Type d'objet", queryset=audited_content_types, empty_label="Tous"
    )
    actor = django_filters.CharFilter(
        label="Auteur (adresse électronique)", field_name="actor__email", lookup_expr="icontains"
    )
    action = django_filters.ChoiceFilter(
        label="Action",
        choices=[
            (LogEntry.Action.CREATE, "Création"),
            (LogEntry.Action.UPDATE, "Modification"),
            (LogEntry.Action.DELETE, "Suppression"),
        ],
        empty_label="Toutes",
    )
    date_min = django_filters.DateFilter(
        label="Depuis le", field_name="timestamp", lookup_expr="date__gte"
    )

    class Meta:
        model = LogEntry
        fields: list[str] = []

    def of_event(self, queryset, name, value):
        if value in EVENT_MODELS:
            app_label, model = EVENT_MODELS[value]
            return queryset.filter(content_type__app_label=app_label, content_type__model=model)
        return queryset.filter(action=LogEntry.Action.ACCESS, additional_data__event=value)
