"""Server-rendered SVG bar charts: the geometry is computed here, the template draws it
(attributes, never ``style=``: the CSP refuses inline styles) next to its data table."""

from decimal import Decimal

from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.html import format_html_join

from pvd.french import euros

WIDTH = 100  # the bars' area, in the SVG's own units (the label sits above each bar)
BAR, GAP = 14, 22


def bars(items: list[tuple[str, int | Decimal]], unit: str) -> dict:
    """Horizontal bars, one per (label, value), scaled to the largest value."""
    largest = max((value for _, value in items), default=0) or 1
    rows = []
    for index, (label, value) in enumerate(items):
        rows.append(
            {
                "label": label,
                "value": value,
                "width": f"{max(float(value) / float(largest) * WIDTH, 0):.2f}",
                "y": index * (BAR + GAP) + GAP - 6,
                "text_y": index * (BAR + GAP) + 12,
            }
        )
    valeurs = [euros(row["value"]) if unit == "€" else intcomma(row["value"]) for row in rows]
    return {
        "rows": rows,
        "unit": unit,
        "height": len(items) * (BAR + GAP) + 4,
        "bar": BAR,
        # The bars and the table's rows written here, one format_html a row (a template tag
        # per attribute costs more than the rest of a dashboard's figures).
        "svg": format_html_join(
            "",
            BARRE,
            (
                (row["text_y"], row["label"], row["y"], row["width"], BAR)
                + (row["width"], row["y"] + 11, valeur)
                for row, valeur in zip(rows, valeurs, strict=True)
            ),
        ),
        "lignes": format_html_join(
            "",
            '<tr><th scope="row">{}</th><td class="fr-cell--right">{}</td></tr>',
            ((row["label"], valeur) for row, valeur in zip(rows, valeurs, strict=True)),
        ),
    }


BARRE = (
    '<text x="0" y="{}" font-size="9" fill="#161616">{}</text>'
    '<rect x="0" y="{}" width="{}" height="{}" fill="#000091"></rect>'
    '<text x="{}" dx="3" y="{}" font-size="9" fill="#161616">{}</text>'
)
