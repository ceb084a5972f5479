"""Charts as plain inline SVG, built on the server: no chart library, no script, no build step.

Each function returns markup (Jinja's `Markup`, safe to insert) with only numbers and escaped
labels in it. Colours come from CSS classes (`ui.css`), so the charts follow the page's style.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 640
BAR_HEIGHT = 22
GAP = 6
LABEL_WIDTH = 150


def _fmt(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:,.0f}"


def bars(items: Sequence[tuple[str, int, str]], title: str) -> Markup:
    """Horizontal bars, one per `(label, value, css class)`, scaled to the largest value."""
    height = len(items) * (BAR_HEIGHT + GAP) + GAP
    top = max([v for _, v, _ in items] + [1])
    room = WIDTH - LABEL_WIDTH - 70
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, (label, value, css) in enumerate(items):
        y = GAP + i * (BAR_HEIGHT + GAP)
        width = max(round(room * value / top), 1 if value else 0)
        parts.append(
            f'<text class="label" x="{LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect class="bar {escape(css)}" x="{LABEL_WIDTH}" y="{y}" width="{width}" '
            f'height="{BAR_HEIGHT}" rx="2"/>'
            f'<text class="value" x="{LABEL_WIDTH + width + 6}" y="{y + 15}">{_fmt(value)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def columns(items: Sequence[tuple[str, int]], title: str, css: str = "") -> Markup:
    """Vertical columns (a histogram): `(label under the column, value)`."""
    height, base, top_pad = 150, 124, 16
    n = max(len(items), 1)
    step = (WIDTH - 20) / n
    top = max([v for _, v in items] + [1])
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<line class="axis" x1="10" y1="{base}" x2="{WIDTH - 10}" y2="{base}"/>',
    ]
    for i, (label, value) in enumerate(items):
        x = 10 + i * step
        h = round((base - top_pad) * value / top)
        if value and h < 1:
            h = 1
        parts.append(
            f'<rect class="bar {escape(css)}" x="{x + 2:.1f}" y="{base - h}" '
            f'width="{max(step - 4, 1):.1f}" height="{h}"><title>{escape(label)}: {value}'
            "</title></rect>"
            f'<text class="tick" x="{x + step / 2:.1f}" y="{base + 14}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
        if value:
            parts.append(
                f'<text class="value" x="{x + step / 2:.1f}" y="{base - h - 3}" '
                f'text-anchor="middle">{_fmt(value)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def latency_label(bound_ms: int) -> str:
    if bound_ms >= 3_600_000:
        return f"≤{bound_ms // 3_600_000}h"
    if bound_ms >= 60_000:
        return f"≤{bound_ms // 60_000}m"
    if bound_ms >= 1000:
        return f"≤{bound_ms // 1000}s"
    return f"≤{bound_ms}ms"
