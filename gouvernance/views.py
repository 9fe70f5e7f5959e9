"""The instances' pages: list, one instance (members, meetings), one meeting (agenda,
attendance, decisions, follow-ups, convocation, relevé). Reads go through ``for_user``
(another territory: 404); writes ask ``policy.may_manage_instance`` (refused: 403)."""

import copy

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Prefetch, Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.generic import DetailView, ListView

from pvd import audit, policy
from pvd.access import get_for_user
from pvd.integrity import create_once
from pvd.pagination import LastPageMixin

from . import convocation
from .forms import (
    DecisionForm,
    DecisionUpdateForm,
    InstanceCreateForm,
    InstanceForm,
    MembreForm,
    PointForm,
    PresencesForm,
    ReunionForm,
    StatutForm,
    SuiteForm,
)
from .models import Decision, Instance, Membre, PointOrdreDuJour, Releve, Reunion, Suite

DENIED = "Seuls le chef de projet du bénéficiaire et la préfecture tiennent cette instance."


def _instance(request, pk: int, write: bool = False) -> Instance:
    queryset = Instance.objects.for_user(request.user).select_related(
        "beneficiaire", "departement", "region"
    )
    return get_for_user(
        request, queryset, pk, policy.may_manage_instance if write else None, DENIED
    )


def _reunion(request, pk: int, write: bool = False) -> Reunion:
    queryset = Reunion.objects.for_user(request.user).select_related(
        "instance__beneficiaire", "instance__departement", "instance__region"
    )
    reunion = get_object_or_404(queryset, pk=pk)
    if write and not policy.may_manage_instance(request.user, reunion.instance):
        raise PermissionDenied(DENIED)
    return reunion


def _child(request, model, pk: int, path: str):
    """A member, point, decision or follow-up (``path``: its way to the instance): read
    through the instance's ``for_user`` (another territory: 404), written by who keeps the
    instance (else 403)."""
    instances = Instance.objects.for_user(request.user)
    queryset = model.objects.filter(**{f"{path}__in": instances})
    obj = get_object_or_404(queryset.select_related(f"{path}__beneficiaire"), pk=pk)
    instance = obj
    for part in path.split("__"):
        instance = getattr(instance, part)
    if not policy.may_manage_instance(request.user, instance):
        raise PermissionDenied(DENIED)
    return obj, instance


def _refused(request, error: ValidationError) -> None:
    messages.error(request, " ".join(error.messages))


class InstanceListView(LastPageMixin, ListView):
    template_name = "gouvernance/instance_list.html"
    paginate_by = 50

    def get_queryset(self):
        return (
            Instance.objects.for_user(self.request.user)
            .with_echeance()
            .select_related("beneficiaire", "departement", "region")
            .annotate(
                nb_prevues=Count("reunions", filter=Q(reunions__statut=Reunion.Statut.PREVUE))
            )
            .order_by("type", "nom")
        )

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            today=timezone.localdate(),
            may_create=policy.may_create_instance(self.request.user),
            **kwargs,
        )


def instance_create(request):
    if not policy.may_create_instance(request.user):
        raise PermissionDenied(
            "Seuls les chefs de projet, les préfectures et l'équipe nationale créent une instance."
        )
    form = InstanceCreateForm(request.POST or None, user=request.user)
    context = {"titre": "Nouvelle instance", "bouton": "Créer l'instance"}
    if request.method != "POST" or not form.is_valid():
        return _form_page(request, form, context)

    def create():
        try:
            with transaction.atomic():
                instance = form.save()
        except IntegrityError:  # another submission created it since the form was checked
            type_ = form.instance.get_type_display().lower()
            form.add_error(None, f"Ce territoire a déjà son {type_}.")
            return _form_page(request, form, context)
        messages.success(
            request, "Instance créée : ajoutez ses membres, puis programmez une réunion."
        )
        return redirect("gouvernance:instance", pk=instance.pk)

    return create_once(request, form, create)


@require_POST
def instance_delete(request, pk: int):
    instance = _instance(request, pk, write=True)
    try:
        instance.delete_if_never_met()
    except ValidationError as error:
        _refused(request, error)
        return redirect("gouvernance:instance", pk=instance.pk)
    messages.success(request, f"Instance « {instance.nom} » supprimée.")
    return redirect("gouvernance:list")


class InstanceDetailView(DetailView):
    template_name = "gouvernance/instance_detail.html"

    def get_object(self, queryset=None):
        return _instance(self.request, self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        instance = self.object
        reunions = list(
            instance.reunions.annotate(nb_decisions=Count("decisions", distinct=True)).order_by(
                "-date", "-heure_debut"
            )
        )
        return super().get_context_data(
            membres=instance.membres.select_related("user"),
            reunions=reunions,
            # Instance.delete_if_never_met decides; this only hides a button that would refuse.
            supprimable=not any(
                r.statut == Reunion.Statut.TENUE or r.nb_decisions for r in reunions
            ),
            echeance=instance.prochaine_echeance(),
            today=timezone.localdate(),
            may_manage=policy.may_manage_instance(self.request.user, instance),
            **kwargs,
        )


def _form_page(request, form, context: dict, template: str = "gouvernance/form.html"):
    return render(request, template, {"form": form, **context})


def reunion_create(request, pk: int):
    instance = _instance(request, pk, write=True)
    form = ReunionForm(request.POST or None)
    context = {"instance": instance, "titre": "Nouvelle réunion", "bouton": "Programmer"}
    if request.method != "POST" or not form.is_valid():
        return _form_page(request, form, context)
    form.instance.instance = instance
    form.instance.created_by = request.user

    def create():
        try:
            form.instance.full_clean()
        except ValidationError as error:
            form.add_error(None, error)
            return _form_page(request, form, context)
        reunion = form.save()
        messages.success(request, "Réunion programmée : envoyez la convocation aux membres.")
        return redirect("gouvernance:reunion", pk=reunion.pk)

    return create_once(request, form, create)


def instance_update(request, pk: int):
    instance = _instance(request, pk, write=True)
    form = InstanceForm(request.POST or None, instance=instance)
    context = {"instance": instance, "titre": "Modifier l'instance", "bouton": "Enregistrer"}
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Instance enregistrée.")
        return redirect("gouvernance:instance", pk=instance.pk)
    return _form_page(request, form, context)


def membre_create(request, pk: int):
    instance = _instance(request, pk, write=True)
    form = MembreForm(request.POST or None)
    context = {"instance": instance, "titre": "Ajouter un membre", "bouton": "Ajouter"}
    if request.method != "POST" or not form.is_valid():
        return _form_page(request, form, context)
    form.instance.instance = instance

    def create():
        form.save()
        messages.success(request, "Membre ajouté.")
        return redirect("gouvernance:instance", pk=instance.pk)

    return create_once(request, form, create)


class ReunionDetailView(DetailView):
    template_name = "gouvernance/reunion_detail.html"

    def get_object(self, queryset=None):
        return _reunion(self.request, self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        reunion = self.object
        user = self.request.user
        decisions = reunion.decisions.prefetch_related(
            "fiches",
            "conventions",
            "lignes__financeur",
            "lignes__fiche",
            Prefetch("suites", queryset=Suite.objects.select_related("responsable")),
        )
        return super().get_context_data(
            instance=reunion.instance,
            points=reunion.points.select_related("fiche", "convention"),
            presences=reunion.presences.select_related("membre"),
            decisions=decisions,
            releves=reunion.releves.select_related("requested_by")[:5],
            figee=reunion.releves.filter(
                statut__in=[Releve.Statut.EN_COURS, Releve.Statut.PRET]
            ).exists(),
            may_manage=policy.may_manage_instance(user, reunion.instance),
            statuts=Reunion.Statut.choices,
            user_id=user.pk,
            historique=audit.history(
                reunion,
                reunion.points.all(),
                reunion.presences.all(),
                reunion.decisions.all(),
                Suite.objects.filter(decision__reunion=reunion),
            ),
            **kwargs,
        )


def point_create(request, pk: int):
    reunion = _reunion(request, pk, write=True)
    kwargs = {"user": request.user, "instance_gouvernance": reunion.instance}
    initial = {"ordre": reunion.points.count() + 1}
    form = PointForm(request.POST or None, initial=initial, **kwargs)
    context = {
        "reunion": reunion,
        "instance": reunion.instance,
        "titre": "Point de l'ordre du jour",
    }
    context["bouton"] = "Ajouter le point"
    if request.method != "POST" or not form.is_valid():
        return _form_page(request, form, context)
    form.instance.reunion = reunion

    def create():
        form.save()
        return redirect("gouvernance:reunion", pk=reunion.pk)

    return create_once(request, form, create)


def presences(request, pk: int):
    reunion = _reunion(request, pk, write=True)
    form = PresencesForm(request.POST or None, reunion=reunion)
    context = {"reunion": reunion, "instance": reunion.instance, "titre": "Présences"}
    context["bouton"] = "Enregistrer les présences"
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Présences enregistrées.")
        return redirect("gouvernance:reunion", pk=reunion.pk)
    return _form_page(request, form, context)


def decision_create(request, pk: int):
    reunion = _reunion(request, pk, write=True)
    form = DecisionForm(request.POST or None, user=request.user, reunion=reunion)
    context = {"reunion": reunion, "instance": reunion.instance, "titre": "Nouvelle décision"}
    context["bouton"] = "Enregistrer la décision"
    if request.method != "POST" or not form.is_valid():
        return _form_page(request, form, context)

    def create():
        try:
            form.save()
        except ValidationError as error:
            form.add_error(None, error)
            return _form_page(request, form, context)
        messages.success(request, "Décision enregistrée.")
        return redirect("gouvernance:reunion", pk=reunion.pk)

    return create_once(request, form, create)


@require_POST
def statut(request, pk: int):
    reunion = _reunion(request, pk, write=True)
    form = StatutForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Statut inconnu.")
        return redirect("gouvernance:reunion", pk=reunion.pk)
    try:
        reunion.change_statut(form.cleaned_data["statut"])
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        messages.success(request, f"Réunion : {reunion.get_statut_display().lower()}.")
    return redirect("gouvernance:reunion", pk=reunion.pk)


@require_POST
def convoquer(request, pk: int):
    reunion = _reunion(request, pk, write=True)
    try:
        sent = convocation.convoquer(reunion)
    except ValidationError as error:
        messages.error(request, error.messages[0])
    else:
        s = "" if sent == 1 else "s"
        messages.success(request, f"Convocation envoyée : {sent} courriel{s} avec l'invitation.")
    return redirect("gouvernance:reunion", pk=reunion.pk)


@require_POST
def publier_releve(request, pk: int):
    reunion = _reunion(request, pk, write=True)
    if reunion.statut != Reunion.Statut.TENUE:
        messages.error(
            request, "Le relevé de décisions se publie après la réunion, une fois tenue."
        )
        return redirect("gouvernance:reunion", pk=reunion.pk)
    with transaction.atomic():
        # After a decision being changed (Reunion.lock_decisions): the relevé shows it.
        Reunion.objects.select_for_update().filter(pk=reunion.pk).first()
        releve = Releve.request(reunion=reunion, requested_by=request.user)
    releve.refresh_from_db(fields=["statut", "erreur"])
    if releve.statut == Releve.Statut.ECHEC:
        messages.error(request, releve.erreur)
    elif releve.statut == Releve.Statut.PRET:
        messages.success(request, "Relevé de décisions publié.")
    else:
        messages.info(request, "Relevé de décisions en préparation : rechargez la page.")
    return redirect("gouvernance:reunion", pk=reunion.pk)


def telecharger_releve(request, pk: int):
    releve = get_object_or_404(
        Releve.objects.for_user(request.user).filter(statut=Releve.Statut.PRET), pk=pk
    )
    if not releve.fichier:
        raise Http404
    return FileResponse(
        releve.fichier.open("rb"),
        as_attachment=True,
        filename=f"releve-de-decisions-{releve.reunion_id}.pdf",
        content_type="application/pdf",
    )


@require_POST
def suite_faite(request, pk: int):
    suite = get_object_or_404(
        Suite.objects.for_user(request.user).select_related("decision__reunion__instance"), pk=pk
    )
    if not policy.may_mark_suite_done(request.user, suite):
        raise PermissionDenied("Seuls son responsable et ceux qui tiennent l'instance le peuvent.")
    if suite.mark_done():
        messages.success(request, "Suite marquée comme faite.")
    return redirect("gouvernance:reunion", pk=suite.decision.reunion_id)


# Changes after the fact: a meeting rescheduled, a member's role, the agenda, a decision
# (until its relevé is published), a follow-up's person and date.


def reunion_update(request, pk: int):
    reunion = _reunion(request, pk, write=True)
    # The form changes its own copy: the page keeps the stored date while the input is wrong.
    form = ReunionForm(request.POST or None, instance=copy.copy(reunion))
    context = {
        "reunion": reunion,
        "instance": reunion.instance,
        "titre": "Modifier la réunion",
        "bouton": "Enregistrer",
    }
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Réunion modifiée : prévenez les membres (nouvelle convocation).")
        return redirect("gouvernance:reunion", pk=reunion.pk)
    return _form_page(request, form, context)


def membre_update(request, pk: int):
    membre, instance = _child(request, Membre, pk, "instance")
    form = MembreForm(request.POST or None, instance=membre)
    context = {"instance": instance, "titre": "Modifier un membre", "bouton": "Enregistrer"}
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Membre modifié.")
        return redirect("gouvernance:instance", pk=instance.pk)
    return _form_page(request, form, context)


@require_POST
def membre_delete(request, pk: int):
    membre, instance = _child(request, Membre, pk, "instance")
    membre.delete()
    messages.success(request, f"{membre} ne fait plus partie de l'instance.")
    return redirect("gouvernance:instance", pk=instance.pk)


def point_update(request, pk: int):
    point, instance = _child(request, PointOrdreDuJour, pk, "reunion__instance")
    kwargs = {"user": request.user, "instance_gouvernance": instance}
    form = PointForm(request.POST or None, instance=point, **kwargs)
    context = {"reunion": point.reunion, "instance": instance, "titre": "Modifier un point"}
    context["bouton"] = "Enregistrer"
    if request.method == "POST" and form.is_valid():
        form.save()
        return redirect("gouvernance:reunion", pk=point.reunion_id)
    return _form_page(request, form, context)


@require_POST
def point_delete(request, pk: int):
    point, _ = _child(request, PointOrdreDuJour, pk, "reunion__instance")
    point.delete()
    messages.success(request, "Point retiré de l'ordre du jour.")
    return redirect("gouvernance:reunion", pk=point.reunion_id)


@require_POST
def point_move(request, pk: int, step: int):
    point, _ = _child(request, PointOrdreDuJour, pk, "reunion__instance")
    point.move(step)
    return redirect(f"{reverse('gouvernance:reunion', args=[point.reunion_id])}#odj-titre")


def decision_update(request, pk: int):
    decision, instance = _child(request, Decision, pk, "reunion__instance")
    form = DecisionUpdateForm(request.POST or None, instance=decision, user=request.user)
    context = {"reunion": decision.reunion, "instance": instance, "titre": "Modifier la décision"}
    context["bouton"] = "Enregistrer"
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                decision.reunion.lock_decisions()
                form.save()
        except ValidationError as error:
            form.add_error(None, error)
            return _form_page(request, form, context)
        messages.success(request, "Décision modifiée.")
        return redirect("gouvernance:reunion", pk=decision.reunion_id)
    return _form_page(request, form, context)


@require_POST
def decision_delete(request, pk: int):
    decision, _ = _child(request, Decision, pk, "reunion__instance")
    try:
        with transaction.atomic():
            decision.reunion.lock_decisions()
            decision.delete()
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(
            request,
            "Décision supprimée. Les montants qu'elle avait décidés restent sur les fiches.",
        )
    return redirect("gouvernance:reunion", pk=decision.reunion_id)


def suite_update(request, pk: int):
    suite, instance = _child(request, Suite, pk, "decision__reunion__instance")
    form = SuiteForm(request.POST or None, instance=suite, user=request.user)
    context = {
        "reunion": suite.decision.reunion,
        "instance": instance,
        "titre": "Modifier la suite à donner",
        "bouton": "Enregistrer",
    }
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Suite à donner modifiée.")
        return redirect("gouvernance:reunion", pk=suite.decision.reunion_id)
    return _form_page(request, form, context)
