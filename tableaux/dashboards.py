"""What each dashboard shows: each role's home (portail.views.HomeView asks
``home_context``), a beneficiary's « Où en est ma ville ? », the préfecture's table of
beneficiaries and the programme's figures by territory. The pages and their exports
(tableaux/views.py) render these."""

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache as cache_once

from django.core.cache import caches
from django.core.cache.utils import make_template_fragment_key
from django.db.models import F, IntegerField, OuterRef, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import floatformat
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import get_format
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html_join

from actions.plan_cache import fragment_cache
from communes.models import Beneficiaire, Departement, Region
from conventions.echeances import sans_date_adhesion
from gouvernance import pilotage as gouvernance_pilotage
from gouvernance.pilotage import pilotage
from pvd import fragments, policy
from pvd.cache import DATA_REWRITTEN_KEY
from pvd.db import ArraySubquery, DansLaListe, Lot, Parametre, Preparee, Valeur, ensemble
from pvd.fragments import TIMEOUT as FRAGMENT_TIMEOUT
from pvd.fragments import content_key
from pvd.french import euros
from pvd.models import Role
from rappels import prochains
from rappels.inbox import unread_key

from . import cache as dashboard_cache
from . import charts, lecture
from .models import Bilan

NB_BILANS = 10  # the latest reports listed on the dashboard


def bilans_context(user, beneficiaire) -> dict:
    """The beneficiary's bilans, and whether the user may ask one (``beneficiaire`` read
    through ``for_user(user)``, as every caller does)."""
    return {
        "bilans": list(
            Bilan.objects.filter(beneficiaire=beneficiaire).select_related("requested_by")[
                :NB_BILANS
            ]
        ),
        "may_request_bilan": policy.may_request_bilan(user, beneficiaire, lu=True),
    }


def ville_context(user, beneficiaire, today) -> dict:
    """The dashboard's figures are read lazily: served from the cached fragment (keyed on
    the data's version, the day, the beneficiary and the reader's rights), they cost no
    query; the bilans and the reader's own reminders are read on every visit. When that
    fragment misses (a new version), the figures' rows are read, and the dashboard is
    rendered only if no fragment was rendered from the very same rows (``ville_contenu_key``,
    pvd/fragments.py): a version renewed by a change that moved none of its figures costs
    the queries, not the rendering."""
    chef = policy.works_for(user, beneficiaire.pk)
    may_edit_plan = policy.may_edit_plan(user, beneficiaire)

    @functools.cache
    def lignes() -> dict:
        return lecture.ville_lignes(beneficiaire.pk, today, chef_de_projet=chef)

    ville = SimpleLazyObject(
        lambda: a_afficher(lecture.ville(beneficiaire, today, chef_de_projet=chef, lignes=lignes()))
    )
    return {
        "ville": ville,
        "ville_beneficiaire": beneficiaire,
        "ville_cache_key": dashboard_cache.fragment_key(
            {dashboard_cache.beneficiaire_scope(beneficiaire.pk)},
            today,
            beneficiaire.pk,
            chef,
            may_edit_plan,
        ),
        # All the rendered dashboard shows, besides the code: the rows, the day (deadlines,
        # late fiches), the beneficiary's pk and statut (the template reads them), the
        # reader's rights.
        "ville_contenu_key": SimpleLazyObject(
            lambda: fragments.content_key(
                (lignes(), today, beneficiaire.pk, beneficiaire.statut, chef, may_edit_plan),
                *dashboard_cache.RENDERED_BY,
            )
        ),
        # Never stale (keyed on what it shows): kept as long as the lists' rows.
        "ville_contenu_timeout": fragments.TIMEOUT,
        "dashboard_cache_timeout": dashboard_cache.timeout(),
        **bilans_context(user, beneficiaire),
        "rappels": prochains.rappels(user, [beneficiaire.pk]),
        "chef_de_projet": chef,
        "may_edit_plan": may_edit_plan,
        "chart_buckets": SimpleLazyObject(
            lambda: charts.bars([(label, n) for _, label, n in ville.buckets], unit="fiches")
        ),
        "chart_statuts": SimpleLazyObject(
            lambda: charts.bars(
                [(label, amount) for _, label, amount in ville.par_statut], unit="€"
            )
        ),
    }


def lien(nom: str) -> Callable[[int], str]:
    """The URL named ``nom`` (one ``<int:pk>`` argument) for any pk, reversed once: the pk
    written where a reversed placeholder stood, as ``reverse`` writes an int."""
    marque = 987654321987654321
    debut, _, fin = reverse(nom, kwargs={"pk": marque}).rpartition(str(marque))
    return lambda pk: f"{debut}{int(pk):d}{fin}"


def a_afficher(ville: lecture.Ville) -> lecture.Ville:
    """What the dashboard writes of each listed fiche and indicator, in Python rather than
    with a tag per row (a plan of fifty fiches lists fifty indicators): their links, and an
    indicator's last measure and target as « 9 logements (31/12/2025) »."""
    fiche, mesurer = lien("actions:fiche"), lien("actions:indicateurs")
    for listed in (*ville.retards, *ville.sans_nouvelles):
        listed.url = fiche(listed.pk)
    for indicateur in ville.indicateurs:
        indicateur.url_fiche = f"{fiche(indicateur.fiche_id)}#indicateurs-title"
        indicateur.url_mesurer = mesurer(indicateur.fiche_id)
        indicateur.mesure = "—"
        if indicateur.valeur is not None:
            valeur = floatformat(indicateur.valeur, "-2g")
            jour = indicateur.date_valeur
            indicateur.mesure = f"{valeur} {indicateur.unite} ({jour:%d/%m/%Y})"
        indicateur.cible_texte = "—"
        if indicateur.cible is not None:
            indicateur.cible_texte = f"{floatformat(indicateur.cible, '-2g')} {indicateur.unite}"
    return ville


@dataclass(frozen=True)
class _VarianteIds:
    """A variant of the préfecture's query of ids: the reader's perimeter (its key) and the
    filters given; the reader rides along to build it, outside the comparison."""

    cle: tuple
    user: object = field(compare=False, hash=False)


def _construire_ids(variante: _VarianteIds) -> QuerySet:
    """``prefecture_rows``'s beneficiaries (those of the reader's préfecture départements
    they read), of the ``departement`` and ``statut`` given (filters)."""
    _, departement, statut = variante.cle
    user = variante.user
    beneficiaires = Beneficiaire.objects.for_user(user).filter(
        departement_id__in=policy.prefecture_departements(user)
    )
    if departement:
        beneficiaires = beneficiaires.filter(departement_id=departement)
    if statut:
        beneficiaires = beneficiaires.filter(statut=statut)
    return beneficiaires.order_by().values_list("pk")


def _construire_departements(_variante) -> QuerySet:
    """The départements of the ``codes`` slot (a préfecture's), by code."""
    return (
        Departement.objects.filter(DansLaListe(F("code"), Valeur("codes")))
        .order_by("code")
        .values_list("code", "nom")
    )


# Built and compiled once per process for each perimeter and filter (pvd/db.py): building the
# perimeter's query costs more than running it. Its values (the perimeter's codes, the filters:
# a few per préfecture) are written in its SQL: planned once per connection.
_IDS = Preparee(_construire_ids, litterale=True)
_DEPARTEMENTS = Preparee(_construire_departements)
MAX_COMPILEES = 256  # perimeters and filters kept compiled per process, at most


def prefecture_rows(user, params, today, lot: Lot | None = None, lues=None):
    """The préfecture's beneficiaries, filtered and sorted as asked; the départements it
    may choose from. ``requetes``: the queries of the ids and départements, which the home
    announces to its ``lot`` when the table's fragment missed (``lues``: what it read from
    the cache, where its rows' cached renderings are kept)."""
    codes = policy.prefecture_departements(user)
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

    # The beneficiaries' ids, from the query compiled once per perimeter and filter (``_IDS``;
    # a search by name builds its own), and the départements, in one round trip.
    requetes = [(_DEPARTEMENTS, None, {"codes": sorted(codes)})]
    if not q:
        if len(_IDS.compilees) >= MAX_COMPILEES:
            _IDS.compilees.clear()
        cle = (policy.perimeter_key(user), departement, statut)
        requetes.append((_IDS, _VarianteIds(cle, user), {}))

    @cache_once
    def lu() -> tuple[list[int], list[Departement]]:
        lignes_departements, *lignes_ids = (lot.ensemble if lot else ensemble)(*requetes)
        if q:
            ids = list(beneficiaires.values_list("pk", flat=True))
        else:
            ids = [pk for (pk,) in lignes_ids[0]]
        return ids, [Departement.from_db(None, ["code", "nom"], row) for row in lignes_departements]

    # Read when the template asks (in the cached fragment): a table served from the cache
    # costs no query.
    rows = SimpleLazyObject(lambda: lecture.beneficiaires_table(lu()[0], today, tri))

    def nb_sans_date_adhesion() -> int:
        """The lauréats whose deadline cannot be computed, whatever the filters: counted on
        the rows when none is applied."""
        if statut or q:
            return sans_date_adhesion(du_departement).count()
        return sum(row.sans_date_adhesion for row in rows)

    return {
        "rows": rows,
        "lignes": SimpleLazyObject(lambda: lignes_du_tableau(rows, lues)),
        "sans_date_adhesion": nb_sans_date_adhesion,
        "departements": SimpleLazyObject(lambda: lu()[1]),
        "filtre": {"departement": departement, "statut": statut, "q": q, "tri": tri},
        "requetes": requetes,
    }


LIGNE = "tableaux/includes/prefecture_row.html"


def lignes_du_tableau(rows: list, lues: dashboard_cache.Lues | None = None) -> list[str]:
    """The préfecture's table's rows rendered, each cached on what it shows: every value
    read with the row (``vars``: the query's columns and the figures added to them), and the
    code that renders it (``pvd.fragments.content_key``). A row is never stale, whatever
    wrote the data, and never crosses perimeters (only a reader whose query returned these
    very values gets it); a table computed again after a change renders only the rows it
    changed, in one round trip to the cache for all of them (those rendered written with the
    page's other entries when it holds them back: ``lues``)."""
    keys = [
        "tableaux:ligne:"
        + content_key(
            [(name, value) for name, value in vars(row).items() if name != "_state"],
            *dashboard_cache.RENDERED_BY,
        )
        for row in rows
    ]
    store = fragment_cache()
    lignes = store.get_many(keys)
    manquantes = {key: row for key, row in zip(keys, rows, strict=True) if key not in lignes}
    if manquantes:
        template = get_template(LIGNE)
        rendues = {key: template.render({"b": row}) for key, row in manquantes.items()}
        if lues is not None and lues.to_write is not None and store is caches["default"]:
            for key, ligne in rendues.items():
                lues.keep(key, ligne, FRAGMENT_TIMEOUT)
        else:
            store.set_many(rendues, FRAGMENT_TIMEOUT)
        lignes.update(rendues)
    # Rendered templates are SafeStrings, and stay so through the cache's pickling.
    return [lignes[key] for key in keys]


def role_cards_key(user, lues: dashboard_cache.Lues) -> str:
    """The cache key of ``role_cards``."""
    scopes = {dashboard_cache.beneficiaire_scope(pk) for pk in policy.role_beneficiaires(user)}
    return "tableaux:roles:" + dashboard_cache.fragment_key(
        scopes, user.pk, user.perimeter_version, lues=lues, tout=False
    )


def roles_requete(user) -> tuple:
    """The query of ``role_cards``, as (query, variant, values) (pvd/db.py)."""
    return (_ROLES, None, {"user": user.pk})


def role_cards(
    user, lues: dashboard_cache.Lues | None = None, lot: Lot | None = None
) -> list[dict]:
    """The home's cards of the user's roles: kind, function, organisation and perimeter, as
    plain values. Read in one query (compiled once per process), cached per user under
    their perimeter version (renewed by any write to their roles and the territories these
    name, pvd/signals.py), the versions of the beneficiaries their roles name (a beneficiary
    renamed) and the last bulk write (the territories' names change through the importers,
    which say so); not under ``tout`` (the funders' catalogue, which no card shows).
    ``lues``: what the home read from the cache already; ``lot``: the queries it sends
    together."""
    lues = dashboard_cache.Lues() if lues is None else lues
    key = role_cards_key(user, lues)
    cards = lues.get_entry(key)
    if cards is None:
        preparee, _, valeurs = requete = roles_requete(user)
        lignes = lot.lignes(requete) if lot is not None else preparee.lignes(**valeurs)
        cards = [
            {
                "kind": Role.Kind(kind).label,
                "fonction": fonction,
                "organisation": organisation,
                "perimetre": perimetre(kind, region, epci, departements, beneficiaires, communes),
            }
            for kind, fonction, organisation, region, epci, *noms in lignes
            for departements, beneficiaires, communes in [_territoires(*noms)]
        ]
        lues.keep(key, cards, dashboard_cache.timeout())
    return cards


def _construire_roles(variante) -> QuerySet:
    """A user's roles with the names of their territories, one query (``Role.perimeter_label``
    reads them in four)."""
    liens = (
        (Role.departements.through, "departement", ("code", "nom")),
        (Role.beneficiaires.through, "beneficiaire", ("nom",)),
        (Role.communes.through, "commune", ("nom", "code")),
    )
    noms = {}
    for through, champ, ordre in liens:
        rows = through.objects.filter(role_id=OuterRef("pk")).order_by(
            *(f"{champ}__{o}" for o in ordre)
        )
        noms[f"{champ}_noms"] = ArraySubquery(rows.values(f"{champ}__nom"))
        if champ == "departement":
            noms["departement_codes"] = ArraySubquery(rows.values("departement__code"))
    return (
        Role.objects.filter(user_id=Parametre("user", IntegerField()))
        .order_by("pk")
        .annotate(**noms)
        .values_list(
            "kind",
            "fonction",
            "organisation",
            "region__nom",
            "epci__nom",
            "departement_noms",
            "departement_codes",
            "beneficiaire_noms",
            "commune_noms",
        )
    )


_ROLES = Preparee(_construire_roles)


def _territoires(dep_noms, dep_codes, beneficiaires, communes):
    departements = [f"{nom} ({code})" for nom, code in zip(dep_noms, dep_codes, strict=True)]
    return departements, beneficiaires, communes


def perimetre(kind, region, epci, departements, beneficiaires, communes) -> str:
    """``Role.perimeter_label`` from the names read with the role."""
    if kind == Role.Kind.NATIONAL:
        return "France entière"
    parts = [*([region] if region else []), *departements, *([epci] if epci else [])]
    return ", ".join([*parts, *beneficiaires, *communes]) or "France entière"


@dataclass(frozen=True)
class _Lecteur:
    """A variant of a query over the reader's perimeter (its key); the reader rides along
    to build it, outside the comparison."""

    cle: str
    user: object = field(compare=False, hash=False)


def _construire_territoires(variante: _Lecteur) -> QuerySet:
    """The départements and régions the reader's roles name, with their counts."""
    return (
        Departement.objects.filter(policy.role_departements_q(variante.user))
        .with_counts()
        .order_by("code")
        .values_list(
            "code", "nom", "region_id", "region__nom", "nb_communes", "nb_petites", "nb_epci"
        )
    )


# The perimeter's codes written in its SQL: planned once per connection (pvd/db.py).
_TERRITOIRES = Preparee(_construire_territoires, litterale=True)


def territoires_requete(user) -> tuple | None:
    """The query of ``territoires_departements``, as (query, variant, values) (pvd/db.py);
    None when the roles name no département nor région."""
    if policy.role_departements_q(user) is None:
        return None
    if len(_TERRITOIRES.compilees) >= MAX_COMPILEES:
        _TERRITOIRES.compilees.clear()
    return (_TERRITOIRES, _Lecteur(policy.perimeter_key(user), user), {})


def territoires_departements(user, lot: Lot | None = None) -> list[Departement]:
    """The home's table of the départements the user's roles name (``role_departements_q``):
    each with its région and counts (``with_counts``), from the query compiled once per
    perimeter, sent with the page's other queries when given their ``lot``."""
    requete = territoires_requete(user)
    if requete is None:
        return []
    preparee, variante, _ = requete
    rows = lot.lignes(requete) if lot is not None else preparee.lignes(variante)
    departements = []
    for code, nom, region_id, region_nom, *counts in rows:
        departement = Departement(code=code, nom=nom, region=Region(code=region_id, nom=region_nom))
        departement.nb_communes, departement.nb_petites, departement.nb_epci = counts
        departements.append(departement)
    return departements


def territoires_cache_key(user, lues: dashboard_cache.Lues | None = None) -> str:
    """The key of the home's tables of the départements and communes the user's roles name
    (their names and counts: reference data, written by the importers, which say so —
    ``pvd.cache.data_rewritten``, in every key), rendered once per perimeter; not under
    ``tout`` (the funders' catalogue, which they do not show)."""
    return dashboard_cache.fragment_key(set(), policy.perimeter_key(user), lues=lues, tout=False)


def home_context(request, parts: Iterable[Callable] = ()) -> dict:
    """What each role's home shows (one dashboard per role, ≤ 12 queries). ``parts``: the
    préfecture home's parts of other apps (``prefecture_context``)."""
    user = request.user
    prefecture = policy.prefecture_departements(user)
    today = timezone.localdate()
    context: dict = {"today": today}
    # What the cache holds for this home, read in as few round trips as possible: the
    # programme's versions, figures and refresh lock together, then the role cards.
    lues = dashboard_cache.Lues()
    if policy.sees_everything(user):
        context.update(programme_context("france", None, today, user, lues=lues))
        if policy.is_national(user):
            context["gouvernance"] = SimpleLazyObject(
                lambda: pilotage_cached({dashboard_cache.PROGRAMME}, today, None, "france")
            )
    elif prefecture:
        context.update(prefecture_context(request, prefecture, today, lues, parts))
    else:
        beneficiaires = list(Beneficiaire.objects.for_user(user).order_by("nom")[:21])
        context["mes_beneficiaires"] = beneficiaires
        if len(beneficiaires) == 1:
            context.update(ville_context(user, beneficiaires[0], today))
        elif beneficiaires:
            context["rappels"] = prochains.rappels(user, [b.pk for b in beneficiaires])
    context["roles"] = role_cards(user, lues, context.get("lot"))
    return context


def prefecture_context(
    request, prefecture, today, lues: dashboard_cache.Lues, parts: Iterable[Callable] = ()
) -> dict:
    """The préfecture's home: its table, governance figures and map, each cached under the
    versions of its départements (each family's), read with the role cards and the
    territories' tables in two round trips to the cache (the versions, then the fragments:
    ``lues``, the fragments read by ``{% cache_lu %}``); the queries of every part that
    missed sent together (``lot``: one round trip, then the table's own); the parts computed
    again written to the cache together once the page is rendered (``Lues.write``,
    portail.views.HomeView). ``parts``: the parts of other apps the home shows (the map),
    each a function of (user, today, lues, lot) giving its fragment's key and its query, or
    None when it is not cached."""
    user = request.user
    departements = sorted(prefecture)
    scopes = {dashboard_cache.departement_scope(code) for code in prefecture}
    familles = {
        dashboard_cache.family_scope(famille, scope)
        for famille in (gouvernance_pilotage.FAMILLE, "carte")
        for scope in scopes
    }
    lues.write_later()
    # With the header's unread count (portail/templatetags/portal.py).
    versions = dashboard_cache.version_keys(scopes | familles)
    lues.read([*versions, DATA_REWRITTEN_KEY, unread_key(user)])
    lot = Lot()
    table = prefecture_rows(user, request.GET, today, lot, lues)
    # The template's cached fragment also varies on the query string (filters, sort).
    prefecture_cache_key = dashboard_cache.fragment_key(scopes, today, *departements, lues=lues)
    autres = [part(user, today, lues, lot) for part in parts]
    fragments = {
        "prefecture": make_template_fragment_key(
            "tableaux-prefecture", [prefecture_cache_key, request.GET.urlencode()]
        ),
        "pilotage": pilotage_key(scopes, today, *departements, lues=lues),
        "roles": role_cards_key(user, lues),
        "territoires": make_template_fragment_key(
            "portail-territoires", [territoires_cache_key(user, lues)]
        ),
    }
    autres = {key: requete for key, requete in filter(None, autres)}
    lues.read([*fragments.values(), *autres])
    manquent = {name for name, key in fragments.items() if lues.get(key) is None}
    if "roles" in manquent:
        lot.annonce(roles_requete(user))
    if "pilotage" in manquent:
        lot.annonce(*gouvernance_pilotage.requetes(departements, today))
    if "prefecture" in manquent:
        lot.annonce(*table["requetes"])
    lot.annonce(*(requete for key, requete in autres.items() if lues.get(key) is None))
    if "territoires" in manquent and (territoires := territoires_requete(user)) is not None:
        lot.annonce(territoires)

    def totaux_departements():
        totaux = lecture.totaux_du_tableau(table["rows"])
        return [(d, totaux.get(d.code, {})) for d in table["departements"]]

    return {
        "prefecture": table,
        "statuts": Beneficiaire.Statut.choices,
        "sorts": SORT_LABELS,
        "prefecture_cache_key": prefecture_cache_key,
        "dashboard_cache_timeout": dashboard_cache.timeout(),
        "totaux_departements": SimpleLazyObject(totaux_departements),
        "gouvernance": SimpleLazyObject(
            lambda: pilotage_cached(scopes, today, departements, *departements, lues=lues, lot=lot)
        ),
        "lues": lues,
        "lot": lot,
    }


def pilotage_key(scopes: set[str], today, *perimeter, lues=None) -> str:
    """The cache key of ``pilotage_cached``."""
    famille = gouvernance_pilotage.FAMILLE
    return "tableaux:pilotage:" + dashboard_cache.fragment_key(
        {dashboard_cache.family_scope(famille, scope) for scope in scopes},
        today,
        *perimeter,
        lues=lues,
    )


def pilotage_cached(scopes: set[str], today, departements, *perimeter, lues=None, lot=None):
    """Governance's steering figures over the instances of ``departements`` (None: France),
    cached under the governance versions of the territories they read
    (gouvernance/pilotage.py ``READS``: a meeting held in the Indre renews the Indre's, its
    région's and France's, never the Corrèze's). ``lues``, ``lot``: what the page read from
    the cache, the queries it sends together."""
    lues = dashboard_cache.Lues() if lues is None else lues
    key = pilotage_key(scopes, today, *perimeter, lues=lues)
    figures = lues.get_entry(key)
    if figures is None:
        figures = pilotage(departements, today, lot)
        lues.keep(key, figures, dashboard_cache.timeout())
    return figures


SORT_LABELS = [
    ("nom", "Nom"),
    ("departement", "Département"),
    ("echeance", "Date d'adhésion"),
    ("-part", "Part notifiée ou versée"),
    ("-retards", "Fiches en retard"),
    ("-maj", "Dernière mise à jour"),
    ("-livrees", "Fiches livrées"),
]


def programme_context(level, code, today, user, lues: dashboard_cache.Lues | None = None) -> dict:
    """France (rows: régions), a région (rows: départements) or a département (rows:
    beneficiaries). ``lues``: what the page reads from the cache, the programme's part read
    in one round trip."""
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
    # The whole country's figures are the same for every national reader: kept in the cache
    # (tableaux/cache.py), the page says when they were computed.
    shared = policy.sees_everything(user)
    financeurs = policy.partner_funders(user) if not policy.is_national(user) else []
    lues = dashboard_cache.Lues() if lues is None else lues
    if shared:
        dashboard_cache.read_programme(lues, level, code, financeurs)
    figures = dashboard_cache.programme_figures(
        level,
        code,
        today,
        shared,
        lambda: lecture.programme(level, code, beneficiaires, today),
        lues,
    )
    context.update(figures)
    chiffres = figures["chiffres"]
    # Drawn only when the fragment is rendered (a cached one needs neither).
    context["chart_buckets"] = SimpleLazyObject(
        lambda: charts.bars([(label, n) for _, label, n in chiffres.buckets], unit="fiches")
    )
    context["chart_statuts"] = SimpleLazyObject(
        lambda: charts.bars([(label, amount) for _, label, amount in chiffres.montants], unit="€")
    )
    # The tables' rows written in Python, when the fragment is rendered: a template tag per
    # cell costs more than the rest of the page (the programme has hundreds of cells).
    context["par_axe_html"] = SimpleLazyObject(lambda: lignes_par_axe(chiffres.par_axe))
    context["financeurs_html"] = SimpleLazyObject(lambda: lignes_financeurs(chiffres.financeurs))
    if "lignes_territoires" in figures:
        context["lignes_territoires_html"] = SimpleLazyObject(
            lambda: lignes_territoires(level, figures["lignes_territoires"])
        )
    context["programme_cache_key"] = programme_cache_key(figures, level, code, lues)
    context["dashboard_cache_timeout"] = dashboard_cache.timeout()
    if financeurs:
        context["partenaire"] = dashboard_cache.partner_figures(
            level,
            code,
            today,
            financeurs,
            shared,
            lambda: lecture.partenaire(level, actifs, financeurs),
            lues,
        )
        context["partenaire_cache_key"] = partner_cache_key(
            context["partenaire"], level, code, lues
        )
    keys = {
        "chiffres": context["programme_cache_key"],
        "territoires": context["programme_cache_key"],
        "partenaire": context.get("partenaire_cache_key"),
    }
    if any(keys.values()):
        context["programme_rendu"] = Rendus(context, keys, lues)
    return context


# The programme's parts cached once rendered (each as the {% cache %} tag would): their
# names in the cache, and their templates.
PARTIES = {
    "chiffres": ("tableaux-programme-chiffres", "tableaux/includes/programme_chiffres.html"),
    "partenaire": ("tableaux-partenaire", "tableaux/includes/partenaire.html"),
    "territoires": (
        "tableaux-programme-territoires",
        "tableaux/includes/programme_territoires.html",
    ),
}


class Rendus:
    """The programme's rendered parts (``programme_rendu.chiffres``…), for the figures kept for
    every national reader or partner: read with the home's other cache entries (``lues``: one
    round trip with the role cards), and on a miss rendered from ``context`` and stored
    together. A part whose key is None (figures computed for one reader) is rendered by the
    template itself."""

    def __init__(self, context: dict, keys: dict, lues: dashboard_cache.Lues) -> None:
        self.context, self.lues, self.rendus = context, lues, None
        self.cles = {
            name: make_template_fragment_key(PARTIES[name][0], [key])
            for name, key in keys.items()
            if key
        }
        self.store = fragment_cache()
        if self.store is caches["default"]:
            lues.want(self.cles.values())

    def __getitem__(self, name: str) -> str | None:
        if self.rendus is None:
            self.rendus = self._rendus()
        return self.rendus.get(name)

    def _rendus(self) -> dict:
        if self.store is caches["default"]:
            self.lues.read(self.cles.values())
            found = {key: self.lues[key] for key in self.cles.values() if key in self.lues}
        else:
            found = self.store.get_many(list(self.cles.values()))
        rendus, nouveaux = {}, {}
        for name, key in self.cles.items():
            if key not in found:
                found[key] = nouveaux[key] = get_template(PARTIES[name][1]).render(self.context)
            rendus[name] = found[key]
        if nouveaux:
            self.store.set_many(nouveaux, dashboard_cache.timeout())
        return rendus


def entiers(*nombres, separateur: str) -> Iterable[str]:
    """``n|default:0|intcomma`` of each number: French grouping (« 12 358 »), the separator
    read once for a table."""
    return (f"{int(n or 0):,}".replace(",", separateur) for n in nombres)


def lien_code(nom: str) -> Callable[[str], str]:
    """The URL named ``nom`` (one ``<str:code>`` argument, a territory's code: digits and
    letters, never quoted) for any code, reversed once."""
    marque = "ZZ987654321ZZ"
    debut, _, fin = reverse(nom, args=[marque]).rpartition(marque)
    return lambda code: f"{debut}{code}{fin}"


CELLULE = '<td class="fr-cell--right">{}</td>'


def lignes_par_axe(par_axe: list) -> str:
    """The rows of « Actions par axe »: each axis's fiches, then per delivery bucket."""
    if not par_axe:
        return ""
    separateur = get_format("THOUSAND_SEPARATOR")
    ligne = '<tr><th scope="row">Axe {}</th>' + CELLULE * len(par_axe[0][1]) + "</tr>"
    return format_html_join(
        "",
        ligne,
        ((numero, *entiers(*counts, separateur=separateur)) for numero, counts in par_axe),
    )


def lignes_financeurs(financeurs: list) -> str:
    """The rows of « Financements par financeur et statut »."""
    if not financeurs:
        return ""
    ligne = '<tr><th scope="row">{}</th>' + CELLULE * len(financeurs[0].montants) + "</tr>"
    return format_html_join(
        "", ligne, ((f.nom, *(euros(m) for m in f.montants)) for f in financeurs)
    )


LIGNE_TERRITOIRE = '<tr><th scope="row"><a href="{}">{}</a></th>' + CELLULE * 6 + "</tr>"
COMPTES = ("nb_beneficiaires", "nb_fiches", "nb_livree", "nb_retards")


def lignes_territoires(level: str, lignes: list) -> str:
    """The rows of the programme's table by région (France) or by département (a région)."""
    france = level == "france"
    url = lien_code("tableaux:region" if france else "tableaux:departement")
    separateur = get_format("THOUSAND_SEPARATOR")
    return format_html_join(
        "",
        LIGNE_TERRITOIRE,
        (
            (
                url(t.code),
                t.nom if france else f"{t.code} – {t.nom}",
                *entiers(*(row.get(name) for name in COMPTES), separateur=separateur),
                euros(row.get("m_notifie") or 0),
                euros(row.get("m_verse") or 0),
            )
            for t, row in lignes
        ),
    )


def programme_cache_key(
    figures: dict, level: str, code, lues: dashboard_cache.Lues | None = None
) -> str | None:
    """The key of the programme's rendered figures (tiles, charts, tables by axis, funder
    and territory): the figures kept for every national reader are rendered once per
    computation (their « calculés le »), and again after a bulk write (the territory's name,
    read with the page) or a change of code. None for figures computed for this reader
    alone. No territory's version is in it: the part shows the kept figures and nothing
    else, so renewing versions (``renew_everything``) serves the same rendering until the
    figures are computed again."""
    calcule_le = figures.get("calcule_le")
    if calcule_le is None:
        return None
    return dashboard_cache.computation_key(calcule_le, level, code, lues=lues)


def partner_cache_key(
    partenaire: dict, level: str, code, lues: dashboard_cache.Lues | None = None
) -> str | None:
    """The key of the partner's rendered part: the figures kept for every partner of these
    funders are rendered once per computation (their « calculés le »: the funders' names
    are in them), as ``programme_cache_key``. None for figures computed for this reader
    alone."""
    calcule_le = partenaire.get("calcule_le")
    if calcule_le is None:
        return None
    funders = dashboard_cache.funders_key(partenaire["financeurs"])
    return dashboard_cache.computation_key(calcule_le, level, code, funders, lues=lues)
