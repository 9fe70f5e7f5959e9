"""Push the fiches to the national projects hub (« API Collectivités »), off by default.

A change of a fiche or of its financing marks it « à envoyer » (api/signals.py); the beat
task (api/tasks.py: push_hub) sends the marked ones, each as one JSON project, with retries
on a server error or a lost connection (urllib3 Retry), and clears the mark only once the
hub accepted it. A fiche that keeps failing stays marked: the next run tries again.
"""

import logging

import requests
from django.conf import settings
from django.utils import timezone
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from actions.models import FicheAction
from actions.plan import Livraison, livraison

from .models import EnvoiFiche

logger = logging.getLogger(__name__)

PROGRAMME = "Petites villes de demain"
# Our delivery bucket (actions/plan.py) → the hub's phase; progress → its phaseStatut.
PHASES = {
    Livraison.NON_DEMARREE: "Idée",
    Livraison.EN_ETUDE: "Étude",
    Livraison.ENGAGEE: "Opération",
    Livraison.LIVREE: "Opération",
}


def configured() -> bool:
    return bool(settings.PVD_HUB_URL and settings.PVD_HUB_KEY)


def phase_statut(fiche: FicheAction, today) -> str:
    if fiche.maturite == FicheAction.Maturite.ABANDONNEE:
        return "Abandonné"
    if fiche.is_finie:
        return "Terminé"
    if fiche.is_en_retard(today):
        return "En retard"
    return "En cours"


def projet(fiche: FicheAction, today) -> dict:
    """A fiche as the hub's project."""
    bucket = livraison(fiche)
    codes = sorted(c.code for c in fiche.communes.all()) or sorted(
        m.commune_id for m in fiche.beneficiaire.membres.all() if m.actif
    )
    collectivites = [{"type": "Commune", "code": code} for code in codes]
    if fiche.beneficiaire.epci_id:
        collectivites.append({"type": "EPCI", "code": fiche.beneficiaire.epci_id})
    debut = fiche.date_debut_reelle or fiche.date_debut_prevue
    return {
        "nom": fiche.titre,
        "externalId": f"pvd-fiche-{fiche.pk}",
        "description": fiche.description,
        "porteur": {"type": fiche.get_maitre_ouvrage_type_display() or None},
        "budgetPrevisionnel": float(fiche.cout_total) if fiche.cout_total is not None else None,
        "dateDebutPrevisionnelle": debut.isoformat() if debut else None,
        "phase": PHASES.get(bucket, "Idée"),
        "phaseStatut": phase_statut(fiche, today),
        "programme": PROGRAMME,
        "collectivites": collectivites,
    }


def session() -> requests.Session:
    retry = Retry(
        total=3,
        backoff_factor=0.5,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # POST too: the hub upserts by externalId
        raise_on_status=False,
    )
    http = requests.Session()
    http.mount("http://", HTTPAdapter(max_retries=retry))
    http.mount("https://", HTTPAdapter(max_retries=retry))
    http.headers["Authorization"] = f"Bearer {settings.PVD_HUB_KEY}"
    return http


def push() -> dict[str, int]:
    """Send the marked fiches (at most PVD_HUB_BATCH); {"envoyees": n, "echecs": n}."""
    counts = {"envoyees": 0, "echecs": 0}
    if not configured():
        return counts
    today = timezone.localdate()
    envois = (
        EnvoiFiche.objects.filter(a_envoyer=True)
        .select_related("fiche__beneficiaire")
        .prefetch_related("fiche__communes", "fiche__beneficiaire__membres")
        .order_by("tentatives", "pk")[: settings.PVD_HUB_BATCH]
    )
    http = session()
    for envoi in envois:
        started = timezone.now()
        try:
            response = http.post(
                settings.PVD_HUB_URL,
                json=projet(envoi.fiche, today),
                timeout=settings.PVD_HUB_TIMEOUT,
            )
            ok = 200 <= response.status_code < 300
            message = "" if ok else f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            ok, message = False, f"{type(exc).__name__}"
        if ok:
            EnvoiFiche.objects.filter(pk=envoi.pk).update(
                envoyee_le=started, tentatives=0, erreur=""
            )
            # A change made while the fiche was being sent keeps it marked for the next run.
            EnvoiFiche.objects.filter(pk=envoi.pk, marquee_le__lte=started).update(a_envoyer=False)
            counts["envoyees"] += 1
        else:
            logger.warning("Hub push of fiche %s failed: %s", envoi.fiche_id, message)
            envoi.echec(message)
            counts["echecs"] += 1
    return counts
