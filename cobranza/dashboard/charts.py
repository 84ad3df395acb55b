"""The dashboard's charts drawn on the server as SVG, for the PDF report (WeasyPrint draws SVG
itself, as vectors). They read the very dict the page's charts read (``views.chart_data``), so
the PDF and the page show the same figures; the axes are abbreviated without cents and the
labels use the number format of the request (docs/domain.md#number-formats).

Deliberately small: a bar chart (aging) and a line chart (the 12-month trend).
"""

from __future__ import annotations

import math
from decimal import Decimal

from django.utils.html import escape

from accounts import numbers

WIDTH, HEIGHT = 460, 210
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 14, 34
BAR_COLORS = ("#16a34a", "#eab308", "#f97316", "#ef4444", "#b91c1c", "#7f1d1d")
LINE_COLORS = ("#1d4ed8", "#dc2626")
FONT = 'font-family="DejaVu Sans, sans-serif"'


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """0 and ``count`` round steps (1, 2, 2.5 or 5 × 10ⁿ) covering ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return [step * i for i in range(count + 1) if step * (i - 1) < top]


def _frame(ticks: list[float], title: str) -> tuple[list[str], float]:
    plot_h = HEIGHT - TOP - BOTTOM
    scale = plot_h / ticks[-1]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
    ]
    for tick in ticks:
        y = HEIGHT - BOTTOM - tick * scale
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e2e8f0" stroke-width="0.8"/>'
        )
        parts.append(
            f'<text x="{LEFT - 5}" y="{y + 3:.1f}" text-anchor="end" font-size="8" {FONT} fill="#475569">'
            f"{escape(numbers.abbreviate(Decimal(str(tick))))}</text>"
        )
    return parts, scale


def _x_labels(labels: list[str], xs: list[float], every: int = 1) -> list[str]:
    return [
        f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 12}" text-anchor="middle" font-size="7.5" {FONT} '
        f'fill="#334155">{escape(label)}</text>'
        for i, (label, x) in enumerate(zip(labels, xs, strict=True))
        if i % every == 0
    ]


def bar_chart(labels: list[str], values: list[float | None], title: str) -> str:
    """Bars, one per label, the y axis abbreviated ("1.2 M")."""
    clean = [max(v or 0.0, 0.0) for v in values]
    ticks = nice_ticks(max(clean, default=0.0))
    parts, scale = _frame(ticks, title)
    slot = (WIDTH - LEFT - RIGHT) / max(len(clean), 1)
    xs = []
    for i, value in enumerate(clean):
        x, h = LEFT + i * slot + slot * 0.18, value * scale
        xs.append(LEFT + i * slot + slot / 2)
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - BOTTOM - h:.1f}" width="{slot * 0.64:.1f}" height="{h:.1f}" '
            f'fill="{BAR_COLORS[i % len(BAR_COLORS)]}" rx="2"/>'
        )
    parts += _x_labels(labels, xs)
    parts.append("</svg>")
    return "".join(parts)


def line_chart(labels: list[str], series: list[tuple[str, list[float | None]]], title: str) -> str:
    """One line per series (gaps where a value is missing), with a legend."""
    top = max((v for _name, values in series for v in values if v is not None), default=0.0)
    ticks = nice_ticks(top)
    parts, scale = _frame(ticks, title)
    n = max(len(labels), 1)
    step = (WIDTH - LEFT - RIGHT) / max(n - 1, 1)
    xs = [LEFT + i * step for i in range(n)]
    for k, (name, values) in enumerate(series):
        color = LINE_COLORS[k % len(LINE_COLORS)]
        runs, run = [], []
        for x, value in zip(xs, values, strict=False):
            if value is None:
                if run:
                    runs.append(run)
                run = []
            else:
                run.append(f"{x:.1f},{HEIGHT - BOTTOM - value * scale:.1f}")
        if run:
            runs.append(run)
        for points in runs:
            parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        lx = LEFT + k * 150
        parts.append(f'<rect x="{lx}" y="{HEIGHT - 12}" width="10" height="3" fill="{color}"/>')
        parts.append(
            f'<text x="{lx + 14}" y="{HEIGHT - 8}" font-size="7.5" {FONT} fill="#334155">{escape(name)}</text>'
        )
    parts += _x_labels(labels, xs, every=2 if n > 8 else 1)
    parts.append("</svg>")
    return "".join(parts)


def report_charts(data: dict) -> dict[str, str]:
    """The PDF's charts from ``views.chart_data`` (the page's numbers)."""
    labels = data["labels"]
    return {
        "aging": bar_chart(data["aging"]["labels"], data["aging"]["amounts"], str(labels["amount"])),
        "trend": line_chart(
            data["trend"]["labels"],
            [
                (str(labels["receivable"]), data["trend"]["receivable"]),
                (str(labels["overdue"]), data["trend"]["overdue"]),
            ],
            str(labels["receivable"]),
        ),
    }
