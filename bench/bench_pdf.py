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

The yardstick is WeasyPrint's anchor document, rendered the same way: a plain document of
about forty pages (headings, paragraphs and small tables, WeasyPrint's own stylesheet and
the system's fonts, no static file), laid out in a fresh child process that imports only
WeasyPrint; its first render is timed and its peak memory read. Convention and anchor
alternate (anchor, convention, anchor…) so the machine's load weighs on both. The
convention is rendered as the portal renders it: in a process forked from the WeasyPrint
fork server (``conventions/pdf_render.py``; its start, once per worker process, is timed
apart), whose peak memory is the document's. Objectives: the convention's time ≤ 0.5× the
anchor's, its memory ≤ 1.2× the anchor's; pages per second are shown for both.
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
TARGET_TIME_RATIO = 0.5
TARGET_RSS_RATIO = 1.2
ANCHOR_SECTIONS = 20
ANCHOR_PARAGRAPH = (
    "Les parties conviennent de conduire ensemble le projet de revitalisation du centre-ville, "
    "en associant les habitants, les commerçants et les partenaires du programme à chacune des "
    "étapes. Le comité de projet se réunit au moins deux fois par an pour suivre l'avancement "
    "des actions, examiner les difficultés rencontrées et proposer les ajustements nécessaires "
    "au plan d'action. "
)


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


def anchor_html() -> str:
    """The anchor document: plain HTML, nothing to fetch, about forty A4 pages."""
    parts = ["<!DOCTYPE html><html lang='fr'><head><meta charset='utf-8'>"]
    parts.append("<title>Document d'ancrage</title></head><body><h1>Document d'ancrage</h1>")
    for article in range(1, ANCHOR_SECTIONS + 1):
        parts.append(f"<h2>Article {article}</h2>")
        parts += [f"<p>{ANCHOR_PARAGRAPH * 2}</p>" for _ in range(6)]
        parts.append(
            "<table><thead><tr><th>Référence</th><th>Intitulé</th><th>Maître d'ouvrage</th>"
            "<th>Montant (€)</th></tr></thead><tbody>"
        )
        parts += [
            f"<tr><td>A-{article}-{row}</td><td>Action {row} de l'article {article}</td>"
            f"<td>Commune</td><td>{1000 * row + article}</td></tr>"
            for row in range(1, 16)
        ]
        parts.append("</tbody></table>")
    return "".join(parts) + "</body></html>"


def run_anchor() -> None:
    """Child process with WeasyPrint only: the anchor's first render, then a warm one."""
    from weasyprint import HTML

    html = anchor_html()
    baseline = peak_rss_mib()
    started = time.perf_counter()
    document = HTML(string=html).render()
    content, pages = document.write_pdf(), len(document.pages)
    wall = time.perf_counter() - started
    del document  # as write_pdf() alone would: the warm render does not add to it
    started = time.perf_counter()
    HTML(string=html).write_pdf()
    warm = time.perf_counter() - started
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


def run_once(convention_id: int) -> None:
    """Child process: one measured render, then a warm one; figures as JSON on stdout."""
    setup_django()
    from pypdf import PdfReader

    from conventions import pdf_render
    from conventions.models import Convention
    from conventions.pdf import render_pdf

    convention = Convention.objects.select_related("beneficiaire").get(pk=convention_id)
    fiches = fake_fiches()
    # The fork server starts with a worker process's first PDF (WeasyPrint's import, about a
    # second, once per process): timed apart, then every render forks it.
    started = time.perf_counter()
    pdf_render.start()
    server_start = time.perf_counter() - started
    peaks = []
    real_render = pdf_render.render_in_child

    def render_in_child(*args):
        content, missing, peak = real_render(*args)
        peaks.append(peak)
        return content, missing, peak

    pdf_render.render_in_child = render_in_child
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
                "server_start_s": round(server_start, 3),
                # The render's process: forked from the WeasyPrint-only server.
                "peak_rss_mib": round(max(peaks), 1),
                "baseline_rss_mib": round(baseline, 1),
                "worker_peak_rss_mib": round(peak_rss_mib(), 1),
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

    results, anchors = [], []
    for run in range(1, RUNS + 1):
        anchors.append(child(["--anchor"], f"Ancre {run}"))
        figures = child(["--once", str(convention_id)], f"Rendu {run}")
        results.append(figures)
        anchor = anchors[-1]
        print(
            f"Ancre {run} : {anchor['wall_s']:.2f} s, {anchor['pages']} pages, "
            f"{anchor['peak_rss_mib']:.0f} Mio ; convention : {figures['wall_s']:.2f} s "
            f"(à chaud : {figures['warm_s']:.2f} s), {figures['pages']} pages, "
            f"{figures['size_kib']} Kio, démarrage du serveur de rendu "
            f"{figures.get('server_start_s', 0):.2f} s, mémoire maximale du rendu "
            f"{figures['peak_rss_mib']:.0f} Mio "
            f"(processus Django qui le demande : {figures['worker_peak_rss_mib']:.0f} Mio)"
        )

    def median(rows, key):
        return statistics.median(r[key] for r in rows)

    wall, warm, anchor_wall = (
        median(results, "wall_s"),
        median(results, "warm_s"),
        median(anchors, "wall_s"),
    )
    rss, anchor_rss = (
        max(r["peak_rss_mib"] for r in results),
        max(a["peak_rss_mib"] for a in anchors),
    )
    pages, anchor_pages = results[0]["pages"], anchors[0]["pages"]
    time_ratio, rss_ratio = wall / anchor_wall, rss / anchor_rss
    pps_ratio = (pages / wall) / (anchor_pages / anchor_wall)
    print(
        f"Médianes : convention {wall:.2f} s (à chaud {warm:.2f} s), ancre {anchor_wall:.2f} s : "
        f"{time_ratio:.2f}× le temps de l'ancre (objectif ≤ {TARGET_TIME_RATIO}× : "
        f"{'atteint' if time_ratio <= TARGET_TIME_RATIO else 'DÉPASSÉ'}), "
        f"{pps_ratio:.2f}× ses pages par seconde"
    )
    print(
        f"Mémoire maximale : convention {rss:.0f} Mio, ancre {anchor_rss:.0f} Mio : "
        f"{rss_ratio:.2f}× (objectif ≤ {TARGET_RSS_RATIO}× : "
        f"{'atteint' if rss_ratio <= TARGET_RSS_RATIO else 'DÉPASSÉ'})"
    )


def child(arguments: list[str], label: str) -> dict:
    process = subprocess.run(
        [sys.executable, __file__, *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if process.returncode:
        sys.exit(f"{label} : échec\n{process.stdout}{process.stderr}")
    return json.loads(process.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    if "--anchor" in sys.argv[1:]:
        run_anchor()
    elif "--once" in sys.argv[1:]:
        run_once(int(sys.argv[sys.argv.index("--once") + 1]))
    else:
        main()
