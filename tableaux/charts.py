"""Server-rendered SVG bar charts: the geometry is computed here, the template draws it
(attributes, never ``style=``: the CSP refuses inline styles) next to its data table."""

from decimal import Decimal

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
    return {"rows": rows, "unit": unit, "height": len(items) * (BAR + GAP) + 4, "bar": BAR}
