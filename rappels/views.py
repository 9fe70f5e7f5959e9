from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django.views.generic import FormView, ListView, TemplateView

from pvd import health, jobs, policy
from pvd.models import User
from pvd.pagination import LastPageMixin

from .emails import read_unsubscribe_token
from .forms import PreferencesForm
from .inbox import forget
from .models import Categorie, Frequence, Rappel
from .preferences import frequences, set_frequence
from .sweep import digest_preview, failures


class RappelListView(LastPageMixin, ListView):
    template_name = "rappels/list.html"
    paginate_by = 50
    context_object_name = "rappels"

    def get_queryset(self):
        return (
            Rappel.objects.for_user(self.request.user)
            .ouverts()
            .select_related("beneficiaire", "departement", "region")
        )


@require_POST
def mark_read(request, pk: int):
    rappel = get_object_or_404(Rappel.objects.for_user(request.user), pk=pk)
    if rappel.lue_le is None:
        rappel.lue_le = timezone.now()
        rappel.save(update_fields=["lue_le"])
        forget([request.user.pk])
    if request.POST.get("ouvrir") and url_has_allowed_host_and_scheme(rappel.lien, None):
        return redirect(rappel.lien)
    return redirect("rappels:list")


@require_POST
def mark_all_read(request):
    count = Rappel.objects.for_user(request.user).non_lus().update(lue_le=timezone.now())
    forget([request.user.pk])
    if count:
        lues = "notification marquée" if count == 1 else "notifications marquées"
        messages.success(request, f"{count} {lues} comme lue{'s' if count > 1 else ''}.")
    else:
        messages.info(request, "Aucune notification à marquer comme lue.")
    return redirect("rappels:list")


class PreferencesView(FormView):
    template_name = "rappels/preferences.html"
    form_class = PreferencesForm

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["initial_frequences"] = frequences([self.request.user.pk])[self.request.user.pk]
        return kwargs

    def form_valid(self, form):
        for categorie in Categorie:
            set_frequence(self.request.user, categorie.value, form.cleaned_data[categorie.value])
        messages.success(self.request, "Vos préférences de notification sont enregistrées.")
        return redirect("rappels:preferences")


@csrf_exempt  # the signed token is the credential; mail clients post it (RFC 8058)
@login_not_required
def unsubscribe(request, token: str):
    try:
        user_id, categories = read_unsubscribe_token(token)
    except signing.BadSignature:
        return render(request, "rappels/desabonnement.html", {"invalide": True}, status=400)
    user = get_object_or_404(User, pk=user_id, is_active=True)
    labels = [Categorie(c).label for c in categories if c in Categorie.values]
    if request.method == "POST":
        for categorie in categories:
            if categorie in Categorie.values:
                set_frequence(user, categorie, Frequence.AUCUN)
        return render(request, "rappels/desabonnement.html", {"fait": True, "labels": labels})
    return render(request, "rappels/desabonnement.html", {"labels": labels, "token": token})


class ApercuView(TemplateView):
    """The next digest, as the e-mail will read (text version), from the pending reminders."""

    template_name = "rappels/apercu.html"

    def get_context_data(self, **kwargs):
        message = digest_preview(self.request.user)
        return super().get_context_data(message=message, **kwargs)


class SanteView(TemplateView):
    """« Santé du service »: each periodic task, its last run, next run and lateness."""

    template_name = "rappels/sante.html"

    def dispatch(self, request, *args, **kwargs):
        if not policy.may_see_service_health(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        report = health.service_report()
        health.watch(report)  # what this page shows failing is an incident, told once
        return super().get_context_data(
            report=report,
            file=health.queue_length(),
            echecs=failures(),
            travaux_en_echec=jobs.failed_since(timezone.now() - timedelta(days=1)),
            **kwargs,
        )
