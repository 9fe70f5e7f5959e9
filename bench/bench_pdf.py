"""Benchmark of the convention PDF (``make bench-pdf``).

Builds, in the database of DATABASE_URL, a convention-cadre of the demo beneficiary
« Ussel – La Courtine » with 6 parties and 8 secteurs d'intervention, then renders it with
an annexed plan d'action of 80 fake fiches (passed straight to ``render_pdf``), 5 times.

Each measure runs in a fresh child process, because ru_maxrss is a high-water mark: within
one process, a second render that needs less memory than the first would leave it
unchanged, so deltas would under-report. A child per measure gives each render its own
peak. The wall time is that of ``render_pdf`` alone (template, layout, PDF), measured on
the child's first render, after Django and WeasyPrint are imported: the worst case, that
of a worker's first document after a restart. The child then renders a second time, to
show the time of a warm worker; the peak memory covers both renders.

Targets on the reference machine: median under 2.5 s, peak memory under 200 Mio.
"""

from __future__ import annotations

import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
FICHES = 80
TITRE = "Banc d'essai PDF – convention-cadre Ussel – La Courtine"
TARGET_WALL_S = 2.5
TARGET_RSS_MIB = 200


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pvd.settings")
    import django

    django.setup()


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def build_convention() -> int:
    """The benchmark's convention, rebuilt at each run (the demo territories are seeded)."""
    from django.core.management import call_command
    from django.db import transaction

    from communes.models import Beneficiaire
    from conventions.models import Convention, Partie, SecteurIntervention

    with open(os.devnull, "w") as devnull:
        call_command("seed_demo", stdout=devnull)
    beneficiaire = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    with transaction.atomic():
        Convention.objects.filter(titre=TITRE).delete()
        convention = Convention.objects.create(
            beneficiaire=beneficiaire,
            type=Convention.Type.CADRE,
            titre=TITRE,
            date_redaction=date(2023, 3, 1),
            date_entree_vigueur=date(2023, 6, 1),
            duree_annees=5,
            date_fin=date(2028, 6, 1),
        )
        signataire, en_presence = Partie.Role.SIGNATAIRE, Partie.Role.EN_PRESENCE
        parties = [
            {
                "nature": "commune",
                "commune_id": "19275",
                "representant": "Mme Élise Maire, maire d'Ussel",
                "date_deliberation": date(2023, 4, 12),
                "role": signataire,
            },
            {
                "nature": "commune",
                "commune_id": "23067",
                "representant": "M. Jean Dupont, maire de La Courtine",
                "date_deliberation": date(2023, 4, 14),
                "role": signataire,
            },
            {
                "nature": "epci",
                "epci_id": beneficiaire.epci_id,
                "representant": "M. Pierre Durand, président",
                "date_deliberation": date(2023, 4, 20),
                "role": signataire,
            },
            {"nature": "etat", "representant": "M. le préfet de la Corrèze", "role": signataire},
            {
                "nature": "partenaire",
                "nom_partenaire": "Banque des Territoires",
                "representant": "Mme Claire Martin, directrice régionale",
                "role": signataire,
            },
            {"nature": "partenaire", "nom_partenaire": "Région", "role": en_presence},
        ]
        for ordre, row in enumerate(parties):
            Partie.objects.create(convention=convention, ordre=ordre, **row)
        for n in range(8):
            SecteurIntervention.objects.create(
                convention=convention,
                commune_id="19275" if n < 5 else "23067",
                nom=f"Secteur {n + 1}" if n else "Centre-ville d'Ussel",
                description="Îlots bâtis, espaces publics et linéaire commercial du secteur.",
                centre_ville_principale=n == 0,
            )
    return convention.pk


def fake_fiches() -> list:
    axes = ["Habitat", "Économie et commerce", "Mobilité", "Patrimoine", "Équipements"]
    financeurs = [
        "Commune",
        "Banque des Territoires",
        "État (DSIL)",
        "Région",
        "Département",
        "Anah",
        "Ademe",
        "Europe (FEDER)",
    ]
    return [
        SimpleNamespace(
            reference=f"FA-{n:02d}",
            titre=f"Requalification de l'îlot n° {n} et de ses espaces publics",
            axe=axes[n % len(axes)],
            maitre_ouvrage="Commune d'Ussel" if n % 3 else "Haute-Corrèze Communauté",
            cout_total=Decimal(100_000 + n * 12_345),
            financements=[
                (financeurs[(n + k) % len(financeurs)], Decimal(20_000 + k * 1_000))
                for k in range(3)
            ],
        )
        for n in range(1, FICHES + 1)
    ]


def run_once(convention_id: int) -> None:
    """Child process: one measured render, then a warm one; figures as JSON on stdout."""
    setup_django()
    from pypdf import PdfReader

    from conventions.models import Convention
    from conventions.pdf import render_pdf

    convention = Convention.objects.select_related("beneficiaire").get(pk=convention_id)
    fiches = fake_fiches()
    baseline = peak_rss_mib()
    started = time.perf_counter()
    content = render_pdf(convention, fiches=fiches)
    wall = time.perf_counter() - started
    started = time.perf_counter()
    render_pdf(convention, fiches=fiches)
    warm = time.perf_counter() - started
    pages = len(PdfReader(io.BytesIO(content)).pages)
    print(
        json.dumps(
            {
                "wall_s": round(wall, 3),
                "warm_s": round(warm, 3),
                "peak_rss_mib": round(peak_rss_mib(), 1),
                "baseline_rss_mib": round(baseline, 1),
                "pages": pages,
                "size_kib": round(len(content) / 1024),
            }
        )
    )


def main() -> None:
    setup_django()
    from django.conf import settings
    from django.db import connection

    database = settings.DATABASES["default"]
    print(f"Base : {connection.vendor} {database['NAME']}")
    convention_id = build_convention()
    connection.close()
    print(f"Convention-cadre : 6 parties, 8 secteurs, annexe de {FICHES} fiches action")

    results = []
    for run in range(1, RUNS + 1):
        child = subprocess.run(
            [sys.executable, __file__, "--once", str(convention_id)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode:
            sys.exit(f"Rendu {run} : échec\n{child.stdout}{child.stderr}")
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        results.append(figures)
        print(
            f"Rendu {run} : {figures['wall_s']:.2f} s (à chaud : {figures['warm_s']:.2f} s), "
            f"mémoire maximale (RSS) {figures['peak_rss_mib']:.0f} Mio (dont "
            f"{figures['baseline_rss_mib']:.0f} Mio avant le rendu) ; {figures['pages']} pages, "
            f"{figures['size_kib']} Kio"
        )

    wall = statistics.median(r["wall_s"] for r in results)
    warm = statistics.median(r["warm_s"] for r in results)
    rss = max(r["peak_rss_mib"] for r in results)
    print(
        f"Médiane : {wall:.2f} s (objectif < {TARGET_WALL_S} s : "
        f"{'atteint' if wall < TARGET_WALL_S else 'DÉPASSÉ'}) ; à chaud : {warm:.2f} s"
    )
    print(
        f"Mémoire maximale : {rss:.0f} Mio (objectif < {TARGET_RSS_MIB} Mio : "
        f"{'atteint' if rss < TARGET_RSS_MIB else 'DÉPASSÉ'})"
    )


if __name__ == "__main__":
    if "--once" in sys.argv[1:]:
        run_once(int(sys.argv[sys.argv.index("--once") + 1]))
    else:
        main()
