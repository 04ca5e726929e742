"""The gross / refunds / net chart of `/insights`, drawn on the server as SVG (no script, no CDN).

Per period two bars (gross, refunds) and the net as a line with points. Floats are used only for
pixel positions; every figure a person reads (axis labels, the tooltips) is the exact decimal.
Colours come from the page's stylesheet through class names, so the chart follows its theme.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from xml.sax.saxutils import escape

from wizesync.insights.figures import RevenueReport, money_str

WIDTH, HEIGHT = 800, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 16, 44
MAX_X_LABELS = 12


@dataclass(frozen=True)
class Point:
    label: str
    gross: Decimal
    refunds: Decimal
    net: Decimal


def nice_step(span: float, ticks: int = 4) -> float:
    """A round step (1, 2 or 5 x 10^k) giving about `ticks` intervals over `span`."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)


def revenue_chart(report: RevenueReport) -> str:
    points = [Point(start.isoformat(), f.gross, f.refunds, f.net) for start, f in report.series]
    if not points:
        return ""
    top = max([float(max(p.gross, p.refunds, p.net)) for p in points] + [0.0])
    bottom = min([float(p.net) for p in points] + [0.0])
    step = nice_step(top - bottom or 1.0)
    y_max = math.ceil(top / step) * step if top > 0 else step
    y_min = math.floor(bottom / step) * step if bottom < 0 else 0.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        return TOP + plot_h * (y_max - value) / (y_max - y_min)

    slot = plot_w / len(points)
    bar = max(min(slot * 0.36, 28.0), 1.0)
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">Gross, refunds and net per {report.interval} '
        f"({escape(report.currency)})</title>",
    ]
    tick = y_min
    while tick <= y_max + step / 2:
        ty = y(tick)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
        )
        out.append(
            f'<text class="axis" x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{escape(_short(tick))}</text>"
        )
        tick += step
    every = max(1, math.ceil(len(points) / MAX_X_LABELS))
    net_path = []
    for i, p in enumerate(points):
        x0 = LEFT + i * slot + (slot - 2 * bar) / 2
        zero = y(0.0)
        for cls, value, x in (("gross", p.gross, x0), ("refunds", p.refunds, x0 + bar)):
            top_y = y(float(value))
            height = max(zero - top_y, 0.0)
            out.append(
                f'<rect class="{cls}" x="{x:.1f}" y="{top_y:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}"><title>{escape(p.label)} {cls}: '
                f"{money_str(value)} {escape(report.currency)}</title></rect>"
            )
        cx = LEFT + (i + 0.5) * slot
        net_path.append(f"{cx:.1f},{y(float(p.net)):.1f}")
        if i % every == 0:
            out.append(
                f'<text class="axis" x="{cx:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{escape(_label(p.label, report.interval))}</text>'
            )
    out.append(f'<polyline class="net" points="{" ".join(net_path)}"/>')
    for i, coords in enumerate(net_path):
        px, py = coords.split(",")
        p = points[i]
        out.append(
            f'<circle class="net-point" cx="{px}" cy="{py}" r="3"><title>'
            f"{escape(p.label)} net: {money_str(p.net)} {escape(report.currency)}"
            f"</title></circle>"
        )
    legend_y = HEIGHT - 10
    for n, (cls, name) in enumerate(
        (("gross", "Gross"), ("refunds", "Refunds"), ("net-point", "Net"))
    ):
        lx = LEFT + n * 110
        out.append(
            f'<rect class="{cls} legend" x="{lx}" y="{legend_y - 9}" width="10" '
            f'height="10"/><text class="axis" x="{lx + 14}" y="{legend_y}">{name}'
            f"</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _label(period: str, interval: str) -> str:
    return period[:7] if interval == "month" else period[5:]


def _short(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if magnitude >= 1_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"
