"""Write communes/importers/departements_bbox.json: each département's bounding box, the
independent reference the coordinates importer checks every point against.

Made once from the official files of the reference data (REFERENCE_DATA_DIR, its README):
the centres of ``communes_coordonnees.csv`` (never its town-hall points, 220 of which are
wrong), each commune's département from the COG 2024 (``insee_cog_communes_2024-01-01.csv``,
``TYPECOM == "COM"`` rows only: a code can also be a commune déléguée). A centre farther
than 250 km from its département's median is left out (there is none in this file; the
rule guards a later run). The box is widened by ``MARGIN`` degrees on each side (about
11 km north-south, 8 km east-west in mainland France): a commune's centre computed
another way, or a commune nouvelle's, stays inside.

    python scripts/departements_bbox.py [REFERENCE_DATA_DIR]
"""

import csv
import json
import math
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "communes" / "importers" / "departements_bbox.json"
MARGIN = 0.1
MAX_KM = 250


def distance_km(a, b) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def main(directory: Path) -> None:
    with open(directory / "insee_cog_communes_2024-01-01.csv", encoding="utf-8") as f:
        departement = {r["COM"]: r["DEP"] for r in csv.DictReader(f) if r["TYPECOM"] == "COM"}
    centres = defaultdict(list)
    with open(directory / "communes_coordonnees.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            dep = departement.get(row["code_insee"])
            if dep and row["longitude_centre"] and row["latitude_centre"]:
                centres[dep].append((float(row["longitude_centre"]), float(row["latitude_centre"])))
    boxes = {}
    for dep, points in sorted(centres.items()):
        median = (statistics.median(p[0] for p in points), statistics.median(p[1] for p in points))
        kept = [p for p in points if distance_km(p, median) <= MAX_KM]
        boxes[dep] = [
            round(min(p[0] for p in kept) - MARGIN, 3),
            round(min(p[1] for p in kept) - MARGIN, 3),
            round(max(p[0] for p in kept) + MARGIN, 3),
            round(max(p[1] for p in kept) + MARGIN, 3),
        ]
    note = (
        "[ouest, sud, est, nord] en degrés WGS 84 : emprise des centres des communes de chaque "
        "département (communes_coordonnees.csv, départements du COG 2024), élargie de "
        f"{MARGIN}° ; faite par scripts/departements_bbox.py"
    )
    lines = [f'  "{dep}": {json.dumps(box)}' for dep, box in boxes.items()]
    OUT.write_text(
        "{\n"
        f' "_note": {json.dumps(note, ensure_ascii=False)},\n'
        ' "departements": {\n' + ",\n".join(lines) + "\n }\n}\n",
        encoding="utf-8",
    )
    print(f"{len(boxes)} départements -> {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "pvd-reference-data")
