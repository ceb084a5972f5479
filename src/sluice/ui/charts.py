"""Charts as plain inline SVG, built on the server: no chart library, no script, no build step.

Each function returns markup (Jinja's `Markup`, safe to insert) with only numbers and escaped
labels in it. Colours come from CSS classes (`ui.css`), so the charts follow the page's style.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

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


# What the timeline stacks, bottom up, with its colour; `retrying` gets a row of its own below,
# since it is a level (the most events waiting at once), not a count of outcomes.
STACKED = (("delivered", "ok"), ("filtered", "muted"), ("parked", "bad"))
TICK_EVERY = 10  # minutes between labels of the time axis


def timeline(minutes: Sequence[tuple[int, Mapping[str, int]]], title: str) -> Markup:
    """Per-minute stacked columns (delivered, filtered, parked) over a strip of `retrying`.

    `minutes` is every minute of the window, oldest first, the current one last; a minute with
    nothing in it draws nothing (a gap). The legend carries the window's totals (and the peak of
    retrying), so the figures can be read without hovering; each column's tooltip has its own.
    """
    left, right, top, base = 64, WIDTH - 10, 34, 134
    strip_top, strip_base = 144, 164
    height = 190
    n = max(len(minutes), 1)
    step = (right - left) / n
    width = max(step - 2, 1)
    tallest = max([sum(c.get(k, 0) for k, _ in STACKED) for _, c in minutes] + [1])
    peak = max([c.get("retrying", 0) for _, c in minutes] + [0])
    totals = {k: sum(c.get(k, 0) for _, c in minutes) for k, _ in STACKED}
    parts = [
        f'<svg class="chart timeline-chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    legend = [(k, css, f"{k} {_fmt(totals[k])}") for k, css in STACKED]
    legend.append(("retrying", "warn", f"retrying, at most {_fmt(peak)}"))
    for i, (key, css, text) in enumerate(legend):
        at = left + i * 130
        parts.append(
            f'<rect class="bar {css}" x="{at}" y="6" width="10" height="10" rx="2"/>'
            f'<text class="label" id="timeline-{key}" x="{at + 15}" y="15">{escape(text)}</text>'
        )
    parts.append(
        f'<line class="grid" x1="{left}" y1="{top}" x2="{right}" y2="{top}"/>'
        f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">{_fmt(tallest)}</text>'
        f'<text class="tick" x="{left - 6}" y="{base + 4}" text-anchor="end">0</text>'
        f'<line class="axis" x1="{left}" y1="{base}" x2="{right}" y2="{base}"/>'
        f'<text class="label" x="{left - 6}" y="{strip_base - 5}" text-anchor="end">retrying</text>'
        f'<line class="axis" x1="{left}" y1="{strip_base}" x2="{right}" y2="{strip_base}"/>'
    )
    for i, (minute, counts) in enumerate(minutes):
        x = left + i * step + 1
        ago = n - 1 - i
        if ago % TICK_EVERY == 0:
            label = "now" if ago == 0 else f"{ago} min ago"
            center = x + width / 2
            parts.append(
                f'<line class="axis" x1="{center:.1f}" y1="{strip_base}" x2="{center:.1f}" '
                f'y2="{strip_base + 4}"/><text class="tick" x="{center:.1f}" '
                f'y="{strip_base + 17}" text-anchor="{"end" if ago == 0 else "middle"}">'
                f"{label}</text>"
            )
        retrying = counts.get("retrying", 0)
        if not retrying and not any(counts.get(k, 0) for k, _ in STACKED):
            continue  # a gap
        clock = time.strftime("%H:%M", time.gmtime(minute // 1000))
        tip = ", ".join(f"{counts.get(k, 0):,} {k}" for k, _ in STACKED)
        parts.append(f'<g class="minute"><title>{clock} UTC: {tip}, {retrying:,} retrying</title>')
        y = float(base)
        for key, css in STACKED:
            value = counts.get(key, 0)
            if value:
                h = max((base - top) * value / tallest, 1.0)
                y -= h
                parts.append(
                    f'<rect class="bar {css}" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                    f'height="{h:.1f}"/>'
                )
        if retrying:
            h = max((strip_base - strip_top) * retrying / max(peak, 1), 1.0)
            parts.append(
                f'<rect class="bar warn" x="{x:.1f}" y="{strip_base - h:.1f}" '
                f'width="{width:.1f}" height="{h:.1f}"/>'
            )
        parts.append("</g>")
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
