"""The report and run record shared by the importers (territoires, liste PVD, ORT).

Each importer reads its files, builds a plan (adding lines to a report as its rules
decide), then applies the plan and calls :func:`record_run`, which stores the full report
in an :class:`~pvd.models.ImportRun`; the management command prints it with examples.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from pvd.models import ImportRun

REPORT_EXAMPLES = 20


def fmt(n: int) -> str:
    """34935 -> « 34 935 »."""
    return f"{n:,}".replace(",", " ")


def section_lines(sections: dict[str, list[str]], order: list[str], limit: int | None) -> list[str]:
    """Each non-empty section in ``order`` (then any other), with ``limit`` examples."""
    names = [name for name in order if sections.get(name)]
    names += [name for name in sections if name not in names and sections[name]]
    lines = []
    for name in names:
        items = sections[name]
        lines.append(f"  {name} : {fmt(len(items))}")
        shown = items if limit is None else items[:limit]
        lines += [f"    - {item}" for item in shown]
        if len(items) > len(shown):
            lines.append(f"    … et {fmt(len(items) - len(shown))} autres")
    return lines


@dataclass
class Report:
    """Header lines, aligned counts, footer lines, then the detail by section."""

    order: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    footer: list[str] = field(default_factory=list)
    sections: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, section: str, text: str) -> None:
        self.sections[section].append(text)

    def render(self, limit: int | None = REPORT_EXAMPLES) -> str:
        """The report in French; ``limit`` examples per section (None: all)."""
        lines = list(self.header)
        width = max(len(label) for label in self.counts)
        lines += [f"{label:<{width}} : {fmt(n)}" for label, n in self.counts.items()]
        lines += self.footer
        detail = section_lines(self.sections, self.order, limit)
        if detail:
            lines.append("Détail :")
        return "\n".join(lines + detail)


def record_run(
    kind: str,
    files: str,
    report,
    *,
    created: int,
    updated: int,
    unchanged: int,
    skipped: int,
) -> ImportRun:
    """The trace of an applied import, with its full report (every example)."""
    return ImportRun.objects.create(
        kind=kind,
        files=files,
        created=created,
        updated=updated,
        unchanged=unchanged,
        skipped=skipped,
        report=report.render(limit=None),
    )
