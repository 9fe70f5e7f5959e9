"""The dashboards: each role's home (pvd.views.HomeView asks ``home_context``), a
beneficiary's « Où en est ma ville ? », the préfecture's table of beneficiaries and the
programme's figures by territory, with their CSV/XLSX exports."""

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from communes.models import Beneficiaire, Departement, Region
from conventions.echeances import sans_date_adhesion
from postes.exports import table_response
from pvd import policy
from rappels import prochains

from . import cache as dashboard_cache
from . import charts, lecture
from .models import Bilan

FORMATS = ("csv", "xlsx")
NB_BILANS = 10  # the latest reports listed on the dashboard


def _ville_context(user, beneficiaire, today) -> dict:
    """The dashboard's figures are read lazily: served from the cached fragment (keyed on
    the data's version, the day, the beneficiary and the reader's rights), they cost no
    query; the bilans and the reader's own reminders are read on every visit."""
    chef = beneficiaire.pk in user.perimeter.beneficiaire_ids
    may_edit_plan = policy.may_edit_plan(user, beneficiaire)
    ville = SimpleLazyObject(lambda: lecture.ville(beneficiaire, today, chef_de_projet=chef))
    return {
        "ville": ville,
        "ville_beneficiaire": beneficiaire,
        "ville_cache_key": dashboard_cache.fragment_key(
            today, beneficiaire.pk, chef, may_edit_plan
        ),
        "dashboard_cache_timeout": dashboard_cache.timeout(),
        "bilans": list(
            Bilan.objects.filter(beneficiaire=beneficiaire).select_related("requested_by")[
                :NB_BILANS
            ]
        ),
        "rappels": prochains.rappels(user, [beneficiaire.pk]),
        "chef_de_projet": chef,
        "may_edit_plan": may_edit_plan,
        "may_request_bilan": policy.may_request_bilan(user, beneficiaire),
        "chart_buckets": SimpleLazyObject(
            lambda: charts.bars([(label, n) for _, label, n in ville.buckets], unit="fiches")
        ),
        "chart_statuts": SimpleLazyObject(
            lambda: charts.bars(
                [(label, amount) for _, label, amount in ville.par_statut], unit="€"
            )
        ),
    }


def _prefecture_rows(user, params, today):
    """The préfecture's beneficiaries, filtered and sorted as asked; the départements it
    may choose from."""
    codes = user.perimeter.prefecture_departement_codes
    departements = Departement.objects.filter(code__in=codes).order_by("code")
    beneficiaires = Beneficiaire.objects.for_user(user).filter(departement_id__in=codes)
    departement = params.get("departement", "")
    if departement:
        if departement not in codes:
            raise Http404("Département inconnu ou hors de votre périmètre.")
        beneficiaires = beneficiaires.filter(departement_id=departement)
    du_departement = beneficiaires
    statut = params.get("statut", "")
    if statut in Beneficiaire.Statut.values:
        beneficiaires = beneficiaires.filter(statut=statut)
    else:
        statut = ""
    q = params.get("q", "").strip()[:100]
    if q:
        beneficiaires = beneficiaires.filter(nom__icontains=q)
    tri = params.get("tri", "nom")
    if tri.lstrip("-") not in lecture.SORTS:
        tri = "nom"
    field = lecture.SORTS[tri.lstrip("-")]
    descending = tri.startswith("-")
    order = f"-{field}" if descending else field
    # Built when read: a table served from the cached fragment costs not even its
    # queryset's construction (some twenty annotated subqueries).
    rows = SimpleLazyObject(
        lambda: lecture.beneficiaires_table(beneficiaires, today).order_by(
            timezone_nulls_last(order), "nom"
        )
    )
    return {
        "rows": rows,
        "beneficiaires_qs": beneficiaires,
        # Called by the template (in the cached fragment): the lauréats whose deadline
        # cannot be computed, whatever the filters.
        "sans_date_adhesion": lambda: sans_date_adhesion(du_departement).count(),
        "departements": departements,
        "filtre": {"departement": departement, "statut": statut, "q": q, "tri": tri},
    }


def timezone_nulls_last(order: str):
    from django.db.models import F

    if order.startswith("-"):
        return F(order[1:]).desc(nulls_last=True)
    return F(order).asc(nulls_last=True)


def home_context(request) -> dict:
    """What each role's home shows (one dashboard per role, ≤ 12 queries)."""
    user = request.user
    perimeter = user.perimeter
    today = timezone.localdate()
    context: dict = {"today": today}
    if perimeter.sees_everything:
        context.update(_programme_context("france", None, today, user))
    elif perimeter.prefecture_departement_codes:
        table = _prefecture_rows(user, request.GET, today)
        context["prefecture"] = table
        context["statuts"] = Beneficiaire.Statut.choices
        context["sorts"] = SORT_LABELS
        # The template's cached fragment also varies on the query string (filters, sort).
        context["prefecture_cache_key"] = dashboard_cache.fragment_key(
            today, *sorted(perimeter.prefecture_departement_codes)
        )
        context["dashboard_cache_timeout"] = dashboard_cache.timeout()

        def totaux_departements():
            totaux = lecture.totaux_par(table["beneficiaires_qs"], "departement", today)
            return [(d, totaux.get(d.code, {})) for d in table["departements"]]

        context["totaux_departements"] = SimpleLazyObject(totaux_departements)
    else:
        beneficiaires = list(Beneficiaire.objects.for_user(user).order_by("nom")[:21])
        context["mes_beneficiaires"] = beneficiaires
        if len(beneficiaires) == 1:
            context.update(_ville_context(user, beneficiaires[0], today))
        elif beneficiaires:
            context["rappels"] = prochains.rappels(user, [b.pk for b in beneficiaires])
    return context


SORT_LABELS = [
    ("nom", "Nom"),
    ("departement", "Département"),
    ("echeance", "Date d'adhésion"),
    ("-part", "Part notifiée ou versée"),
    ("-retards", "Fiches en retard"),
    ("-maj", "Dernière mise à jour"),
    ("-livrees", "Fiches livrées"),
]


class VilleView(TemplateView):
    """« Où en est ma ville ? » for one beneficiary the user reads (404 otherwise)."""

    template_name = "tableaux/ville.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        beneficiaire = get_object_or_404(
            Beneficiaire.objects.for_user(self.request.user).select_related("departement"),
            pk=kwargs["pk"],
        )
        today = timezone.localdate()
        context["today"] = today
        context.update(_ville_context(self.request.user, beneficiaire, today))
        return context


def _programme_context(level, code, today, user) -> dict:
    """France (rows: régions), a région (rows: départements) or a département (rows:
    beneficiaries)."""
    context: dict = {"niveau": level}
    if level == "france":
        context["export_url"] = reverse("tableaux:france")
    else:
        context["export_url"] = reverse(f"tableaux:{level}", args=[code])
    beneficiaires = Beneficiaire.objects.for_user(user)
    if level == "region":
        territoire = get_object_or_404(Region, code=code)
        beneficiaires = beneficiaires.filter(departement__region=territoire)
        context["territoire"] = territoire
    elif level == "departement":
        territoire = get_object_or_404(Departement.objects.select_related("region"), code=code)
        beneficiaires = beneficiaires.filter(departement=territoire)
        context["territoire"] = territoire
    actifs = beneficiaires.filter(statut__in=Beneficiaire.STATUTS_ACTIFS)
    # The whole country's figures are the same for every national reader: computed once per
    # PROGRAMME_CACHE_TIMEOUT (the page says when), not on every visit.
    # France's are also computed ahead of their expiry (tableaux.tasks.refresh_programme).
    shared = user.perimeter.sees_everything and settings.PROGRAMME_CACHE_TIMEOUT > 0
    key = dashboard_cache.programme_key(level, code, today)
    figures = cache.get(key) if shared else None
    if figures is None:
        figures = lecture.programme(level, code, beneficiaires, today)
        if shared:
            figures["calcule_le"] = timezone.localtime()
            cache.set(key, figures, settings.PROGRAMME_CACHE_TIMEOUT)
    context.update(figures)
    chiffres = figures["chiffres"]
    context["chart_buckets"] = charts.bars(
        [(label, n) for _, label, n in chiffres.buckets], unit="fiches"
    )
    context["chart_statuts"] = charts.bars(
        [(label, amount) for _, label, amount in chiffres.montants], unit="€"
    )
    financeurs = lecture.financeurs_du_partenaire(user) if not user.perimeter.national else []
    if financeurs:
        key += ":partenaire:" + ",".join(str(f.pk) for f in financeurs)
        partenaire = cache.get(key) if shared else None
        if partenaire is None:
            partenaire = _partenaire(level, actifs, financeurs)
            if shared:
                cache.set(key, partenaire, settings.PROGRAMME_CACHE_TIMEOUT)
        context["partenaire"] = partenaire
    return context


def _partenaire(level, actifs, financeurs) -> dict:
    """Where a partner's money goes: by territory and by axis (one GROUP BY query)."""
    key = {
        "france": "fiche__beneficiaire__departement__region__nom",
        "region": "fiche__beneficiaire__departement__nom",
        "departement": "fiche__beneficiaire__nom",
    }[level]
    axe = "fiche__axe__numero"
    argent = lecture.argent_du_financeur(actifs, financeurs, key, axe)
    return {
        "financeurs": financeurs,
        "par_territoire": [(row[key], row) for row in argent[key]],
        "par_axe": [(row[axe], row) for row in argent[axe]],
    }


class ProgrammeView(TemplateView):
    """The programme's figures for a région or a département: national readers only."""

    template_name = "tableaux/programme.html"

    def dispatch(self, request, *args, **kwargs):
        if not policy.may_see_synthese(request.user):
            raise PermissionDenied("Page réservée aux lecteurs nationaux du programme.")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        level, code = kwargs.get("niveau", "france"), kwargs.get("code")
        today = timezone.localdate()
        fmt = request.GET.get("format")
        if fmt in FORMATS:
            return _programme_export(request.user, level, code, today, fmt)
        context = self.get_context_data(**kwargs)
        context.update(_programme_context(level, code, today, request.user))
        return self.render_to_response(context)


def _money(row: dict, statut: str):
    return row.get(f"m_{statut}", lecture.ZERO)


def inconnue(b) -> str:
    """A lauréat's adhésion date the deadline needs and nobody knows says so in the exports,
    rather than a blank cell read as « nothing due »."""
    if b.statut == Beneficiaire.Statut.LAUREAT and not b.cadre_signee:
        return "inconnue (date d'adhésion à compléter)"
    return ""


def _programme_export(user, level, code, today, fmt):
    context = _programme_context(level, code, today, user)
    statuts = lecture.STATUTS.choices
    buckets = lecture.Livraison.choices
    if level == "departement":
        header = ["Bénéficiaire", "Statut", "Fiches", "En retard"]
        header += [label for _, label in buckets] + ["Coût (€)", "Notifié ou versé (€)"]
        header += ["Date d'adhésion"]
        data = [header] + [
            [b.nom, b.get_statut_display(), b.nb_fiches, b.nb_retards]
            + [getattr(b, f"nb_{value}") for value, _ in buckets]
            + [b.cout, b.decide]
            + [b.date_adhesion or inconnue(b)]
            for b in context["lignes_beneficiaires"]
        ]
        name = f"programme-pvd-{context['territoire'].code}"
    else:
        header = ["Code", "Territoire", "Bénéficiaires", "Fiches", "En retard"]
        header += [label for _, label in buckets] + ["Coût (€)"]
        header += [f"{label} (€)" for _, label in statuts]
        # What the figures cannot count, beside them.
        header += ["Fiches sans date de fin prévue", "Lauréats sans date d'adhésion connue"]
        data = [header] + [
            [t.code, t.nom, row.get("nb_beneficiaires", 0), row.get("nb_fiches", 0)]
            + [row.get("nb_retards", 0)]
            + [row.get(f"nb_{value}", 0) for value, _ in buckets]
            + [row.get("cout", lecture.ZERO)]
            + [_money(row, value) for value, _ in statuts]
            + [row.get("nb_sans_fin", 0), row.get("sans_date_adhesion", 0)]
            for t, row in context["lignes_territoires"]
        ]
        name = "programme-pvd-france" if level == "france" else f"programme-pvd-{code}"
    return table_response(data, fmt, name, "Programme PVD")


class BeneficiairesExportView(TemplateView):
    """The préfecture's table as CSV or XLSX, with its filters."""

    def get(self, request, *args, **kwargs):
        user = request.user
        if not user.perimeter.prefecture_departement_codes:
            raise PermissionDenied("Export réservé aux préfectures.")
        fmt = kwargs["format"]
        if fmt not in FORMATS:
            raise Http404("Format inconnu : CSV ou XLSX.")
        table = _prefecture_rows(user, request.GET, timezone.localdate())
        departement = table["filtre"]["departement"]
        if departement and not policy.may_export(user, departement):
            raise PermissionDenied
        buckets = lecture.Livraison.choices
        header = [
            "Département",
            "Bénéficiaire",
            "Statut",
            "Adhésion signée le",
            "Convention-cadre signée",
            "Échéance de la convention-cadre",
            "Coût des fiches (€)",
            "Notifié ou versé (€)",
            "Part notifiée ou versée (%)",
            *(label for _, label in buckets),
            "Fiches en retard",
            "Dernière mise à jour du plan",
            "Chef de projet en poste",
            "Poste vacant depuis",
        ]

        def rows():
            yield header
            today = timezone.localdate()
            for b in table["rows"]:
                echeance = lecture.Echeance.of(b, today)
                yield [
                    b.departement_id,
                    b.nom,
                    b.get_statut_display(),
                    b.date_adhesion or inconnue(b),
                    "oui" if b.cadre_signee else "non",
                    echeance.date_limite or inconnue(b),
                    b.cout,
                    b.decide,
                    lecture.part(b.decide, b.cout),
                    *(getattr(b, f"nb_{value}") for value, _ in buckets),
                    b.nb_retards,
                    timezone.localtime(b.derniere_maj).date() if b.derniere_maj else None,
                    b.chefs_en_poste or "",
                    b.vacant_depuis,
                ]

        return table_response(rows(), fmt, "beneficiaires-pvd", "Bénéficiaires")


@require_POST
def request_bilan(request, pk: int):
    """« Télécharger le bilan »: queue the report; the dashboard lists it once ready."""
    beneficiaire = get_object_or_404(Beneficiaire.objects.for_user(request.user), pk=pk)
    if not policy.may_request_bilan(request.user, beneficiaire):
        raise PermissionDenied("Vous ne pouvez pas demander le bilan de ce bénéficiaire.")
    bilan = Bilan.request(beneficiaire=beneficiaire, requested_by=request.user)
    bilan.refresh_from_db(fields=["statut", "erreur"])
    if bilan.statut == Bilan.Statut.ECHEC:
        messages.error(request, bilan.erreur)
    elif bilan.statut == Bilan.Statut.PRET:
        messages.success(request, "Le bilan est prêt : téléchargez-le dans la liste des bilans.")
    else:
        messages.info(
            request, "Bilan en cours de préparation : il apparaîtra dans la liste des bilans."
        )
    return redirect(f"{reverse('tableaux:ville', args=[beneficiaire.pk])}#bilans")


def download_bilan(request, pk: int):
    bilan = get_object_or_404(
        Bilan.objects.filter(
            beneficiaire__in=Beneficiaire.objects.for_user(request.user),
            statut=Bilan.Statut.PRET,
        ),
        pk=pk,
    )
    date = timezone.localtime(bilan.requested_at)
    return FileResponse(
        bilan.fichier.open("rb"),
        as_attachment=True,
        filename=f"bilan-pvd-{bilan.beneficiaire_id}-{date:%Y-%m-%d-%Hh%M}.pdf",
        content_type="application/pdf",
    )
