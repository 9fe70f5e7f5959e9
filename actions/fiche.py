"""What a fiche's page shows (actions.views.FicheDetailView), read in one round trip and
rendered once per content.

The page's six queries are prepared (pvd/db.py ``Preparee``: built and compiled once per
process, which costs several times what PostgreSQL takes to run them) and sent together
(``ensemble``): the fiche through the reader's perimeter (``for_user``: another territory's
fiche reads no row, a 404; compiled once per perimeter) with its financing total and
communes, its financing lines with their funders, the governance decisions that set them,
its indicators with their last measure, its progress notes with their authors, and its
history (pvd/audit.py ``history_query``). The other queries read the fiche's rows whoever
asks: they are shown only when the first one read the fiche.

The body of the page is cached on a digest of all it shows (``Fiche.content``): the rows
read, the names the history gives what its entries point at, whether the fiche is late
(the day), the reader's rights (edit, read the journal) and the code (pvd/cache.py). A
body is thus never stale, whatever wrote the data; a change renders it again, once per
content and set of rights.
"""

from dataclasses import dataclass, field

from django.db.models import BigIntegerField, OuterRef, QuerySet, Subquery
from django.http import Http404
from django.utils.functional import cached_property

from pvd import audit, policy
from pvd.db import ArraySubquery, Parametre, Preparee, ensemble
from pvd.models import User

from .models import FicheAction, Financeur, Indicateur, LigneFinancement, Mesure, PointAvancement
from .plan import fiche_totals, with_finance_of_fiche
from .plan_cache import digest


def _fiche_slot() -> Parametre:
    return Parametre("fiche", BigIntegerField())


# The largest id a row may have (bigint): a larger one in the address finds nothing (a 404, as
# an ORM lookup gives), and is never sent.
MAX_ID = 2**63 - 1


def _columns(model, prefix: str = "") -> tuple[str, ...]:
    """A model's columns as ``from_db`` takes them, each read through ``prefix``."""
    return tuple(prefix + f.attname for f in model._meta.concrete_fields)


# What the page reads of the objects around the fiche: what it shows of them and their names.
BENEFICIAIRE = ("id", "nom")
USER = ("id", "first_name", "last_name", "email")
Axe = FicheAction._meta.get_field("axe").related_model
Beneficiaire = FicheAction._meta.get_field("beneficiaire").related_model
# Governance sits above this app and is not imported: its models through the relations.
Decision = LigneFinancement._meta.get_field("decisions").related_model
Reunion = Decision._meta.get_field("reunion").related_model
Instance = Reunion._meta.get_field("instance").related_model

FICHE = _columns(FicheAction)
AXE = _columns(Axe)
FICHE_MORE = (
    "finance",
    "noms_communes",
    *(f"beneficiaire__{name}" for name in BENEFICIAIRE),
    *(f"axe__{name}" for name in AXE),
    *(f"updated_by__{name}" for name in USER),
)
LIGNE = _columns(LigneFinancement)
FINANCEUR = _columns(Financeur)
INDICATEUR = _columns(Indicateur)
POINT = _columns(PointAvancement)


@dataclass(frozen=True)
class _Lecteur:
    """The variant of the fiche's query: the reader's perimeter (its key); the reader rides
    along to build it, outside the comparison."""

    cle: str
    user: object = field(compare=False, hash=False)


def _fiche(lecteur: _Lecteur) -> QuerySet:
    communes = FicheAction.communes.through.objects.filter(ficheaction=OuterRef("pk"))
    fiches = FicheAction.objects.for_user(lecteur.user).filter(pk=_fiche_slot())
    return (
        with_finance_of_fiche(fiches)
        .annotate(
            noms_communes=ArraySubquery(
                communes.order_by("commune__nom", "commune__code").values("commune__nom")
            )
        )
        .order_by()
        .values_list(*FICHE, *FICHE_MORE)
    )


def _lignes(_variante) -> QuerySet:
    return (
        LigneFinancement.objects.filter(fiche_id=_fiche_slot())
        .order_by("financeur__ordre", "pk")
        .values_list(*LIGNE, *(f"financeur__{name}" for name in FINANCEUR))
    )


def _decisions(_variante) -> QuerySet:
    """The decisions that set the fiche's lines (gouvernance.Decision.lignes), in the order of
    the decisions (their meeting's, then their own)."""
    return (
        LigneFinancement.decisions.through.objects.filter(lignefinancement__fiche_id=_fiche_slot())
        .order_by("decision__reunion", "decision__pk")
        .values_list(
            "lignefinancement_id",
            "decision_id",
            "decision__reunion_id",
            "decision__reunion__date",
            "decision__reunion__instance_id",
            "decision__reunion__instance__type",
        )
    )


def _indicateurs(_variante) -> QuerySet:
    """Each indicator with its last measure, which is what the page shows of its measures."""
    mesures = Mesure.objects.filter(indicateur=OuterRef("pk")).order_by("-date", "-pk")
    return (
        Indicateur.objects.filter(fiche_id=_fiche_slot())
        .order_by("type", "pk")
        .annotate(
            derniere_date=Subquery(mesures.values("date")[:1]),
            derniere_valeur=Subquery(mesures.values("valeur")[:1]),
        )
        .values_list(*INDICATEUR, "derniere_date", "derniere_valeur")
    )


def _points(_variante) -> QuerySet:
    return (
        PointAvancement.objects.filter(fiche_id=_fiche_slot())
        .order_by("-date", "-created_at")
        .values_list(*POINT, *(f"auteur__{name}" for name in USER))
    )


def _historique(_variante) -> QuerySet:
    """The entries about the fiche and its rows: its lines, indicators and their measures,
    progress notes."""
    slot = _fiche_slot()
    return audit.history_query(
        FicheAction.objects.filter(pk=slot),
        LigneFinancement.objects.filter(fiche_id=slot),
        Indicateur.objects.filter(fiche_id=slot),
        Mesure.objects.filter(indicateur__fiche_id=slot),
        PointAvancement.objects.filter(fiche_id=slot),
    )


FICHE_QUERY = Preparee(_fiche)
LIGNES = Preparee(_lignes)
DECISIONS = Preparee(_decisions)
INDICATEURS = Preparee(_indicateurs)
POINTS = Preparee(_points)
HISTORIQUE = Preparee(_historique)
MAX_COMPILEES = 256  # perimeters kept compiled per process, at most


def _user(row) -> User | None:
    return None if row[0] is None else User.from_db("default", USER, row)


class Fiche:
    """A fiche as its page shows it, for ``user``: read in one round trip (404 outside the
    reader's perimeter), its objects built from the rows only when the body is rendered."""

    def __init__(self, user, pk: int):
        self.user = user
        if pk > MAX_ID:
            raise Http404("Aucune fiche action ne correspond à cette adresse.")
        if len(FICHE_QUERY.compilees) >= MAX_COMPILEES:
            FICHE_QUERY.compilees.clear()
        lecteur = _Lecteur(policy.perimeter_key(user), user)
        values = {"fiche": pk}
        (
            fiches,
            self.lignes_rows,
            self.decisions_rows,
            self.indicateurs_rows,
            self.points_rows,
            self.historique_rows,
        ) = ensemble(
            (FICHE_QUERY, lecteur, values),
            (LIGNES, None, values),
            (DECISIONS, None, values),
            (INDICATEURS, None, values),
            (POINTS, None, values),
            (HISTORIQUE, None, values),
        )
        if not fiches:
            raise Http404("Aucune fiche action ne correspond à cette adresse.")
        self.fiche_row = fiches[0]
        self.fiche = self._fiche(self.fiche_row)

    @staticmethod
    def _fiche(row) -> FicheAction:
        fiche = FicheAction.from_db("default", FICHE, row[: len(FICHE)])
        more = iter(row[len(FICHE) :])
        fiche.finance = next(more)
        fiche.noms_communes = next(more)
        fiche.beneficiaire = Beneficiaire.from_db(
            "default", BENEFICIAIRE, [next(more) for _ in BENEFICIAIRE]
        )
        fiche.axe = Axe.from_db("default", AXE, [next(more) for _ in AXE])
        fiche.updated_by = _user([next(more) for _ in USER])
        return fiche

    @cached_property
    def can_edit(self) -> bool:
        return self.fiche.can_edit(self.user)

    @cached_property
    def financements(self) -> list[LigneFinancement]:
        decisions: dict[int, list] = {}
        for ligne_id, decision_id, reunion_id, date, instance_id, type_ in self.decisions_rows:
            reunion = Reunion.from_db(
                "default", ("id", "instance_id", "date"), (reunion_id, instance_id, date)
            )
            reunion.instance = Instance.from_db("default", ("id", "type"), (instance_id, type_))
            decision = Decision.from_db("default", ("id", "reunion_id"), (decision_id, reunion_id))
            decision.reunion = reunion
            decisions.setdefault(ligne_id, []).append(decision)
        lignes = []
        for row in self.lignes_rows:
            ligne = LigneFinancement.from_db("default", LIGNE, row[: len(LIGNE)])
            ligne.financeur = Financeur.from_db("default", FINANCEUR, row[len(LIGNE) :])
            ligne.fiche = self.fiche
            ligne.decisions_lues = decisions.get(ligne.pk, [])
            lignes.append(ligne)
        return lignes

    @cached_property
    def indicateurs(self) -> list[Indicateur]:
        indicateurs = []
        for row in self.indicateurs_rows:
            indicateur = Indicateur.from_db("default", INDICATEUR, row[: len(INDICATEUR)])
            indicateur.derniere_date, indicateur.derniere_valeur = row[len(INDICATEUR) :]
            indicateur.fiche = self.fiche
            indicateurs.append(indicateur)
        return indicateurs

    @cached_property
    def points(self) -> list[PointAvancement]:
        points = []
        for row in self.points_rows:
            point = PointAvancement.from_db("default", POINT, row[: len(POINT)])
            point.auteur = _user(row[len(POINT) :])
            point.fiche = self.fiche
            points.append(point)
        return points

    @cached_property
    def history(self) -> tuple[list[audit.Entry], dict]:
        """The history's entries and the names of what they point at (pvd/audit.py
        ``entries_of``), named without a query when the page read it."""
        fiche = self.fiche
        return audit.entries_of(
            self.historique_rows,
            known=[
                fiche,
                fiche.beneficiaire,
                fiche.axe,
                *([fiche.updated_by] if fiche.updated_by else []),
                self.user,
                *self.indicateurs,
                *(ligne.financeur for ligne in self.financements),
                *(point.auteur for point in self.points),
            ],
        )

    def totals(self) -> dict:
        return fiche_totals(self.fiche)

    def content(self, *more) -> str:
        """A digest of all that the page's body shows: the rows read, the names the history
        gives, whether the fiche is late (the day), ``more`` (the reader's rights) and the
        code. A body rendered for the same digest is the same body."""
        entries, labels = self.history
        return digest(
            (
                self.fiche_row,
                self.lignes_rows,
                self.decisions_rows,
                self.indicateurs_rows,
                self.points_rows,
                audit.history_content(entries, labels),
            ),
            (self.fiche.en_retard, more),
        )
