"""Inline SVG charts for the HTML report: drawn here, in Python, so the page needs no script, font or
library from anywhere (no xmlns either: inline SVG in HTML5 does not need it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
FONT = 'font-family="system-ui, sans-serif"'


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _legend(names: Sequence[str], x: float, y: float) -> str:
    parts, cx = [], x
    for i, name in enumerate(names):
        parts.append(f'<rect x="{cx:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{color(i)}"/>')
        parts.append(f'<text x="{cx + 14:.1f}" y="{y:.1f}" font-size="11" {FONT}>{escape(name)}</text>')
        cx += 24 + 7 * len(name)
    return "".join(parts)


def _svg(chart_id: str, title: str, width: int, height: int, body: str) -> str:
    return (
        f'<svg id="{chart_id}-svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-labelledby="{chart_id}-title" preserveAspectRatio="xMidYMid '
        f'meet"><title id="{chart_id}-title">{escape(title)}</title>{body}</svg>'
    )


def grouped_bars(
    chart_id: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    percent: bool = True,
) -> str:
    """Vertical bars, one group per category, one bar per series; values 0..1 shown as percentages."""
    width, height, left, right, top, bottom = 900, 360, 48, 12, 30, 110
    plot_w, plot_h = width - left - right, height - top - bottom
    body = [_legend([name for name, _ in series], left, 16)]
    for k in range(0, 11, 2):  # grid: 0, 20, … 100 %
        y = top + plot_h * (1 - k / 10)
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        body.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" '
            f'text-anchor="end" {FONT}>{k * 10}{" %" if percent else ""}</text>'
        )
    group_w = plot_w / max(1, len(categories))
    bar_w = max(2.0, min(28.0, (group_w - 8) / max(1, len(series))))
    for c, category in enumerate(categories):
        gx = left + c * group_w + (group_w - bar_w * len(series)) / 2
        for s, (name, values) in enumerate(series):
            value = values[c]
            x = gx + s * bar_w
            if value is None:
                body.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - 3:.1f}" '
                    f'font-size="8" text-anchor="middle" fill="#9ca3af" {FONT}>–</text>'
                )
                continue
            h = plot_h * max(0.0, min(1.0, value))
            label = f"{name} — {category} : {value * 100:.1f} %"
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{h:.1f}" fill="{color(s)}"><title>{escape(label)}</title></rect>'
            )
        lx, ly = left + c * group_w + group_w / 2, top + plot_h + 12
        body.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="10" text-anchor="end" '
            f'transform="rotate(-35 {lx:.1f} {ly:.1f})" {FONT}>{escape(category)}</text>'
        )
    body.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#6b7280"/>')
    return _svg(chart_id, title, width, height, "".join(body))


def _nice_step(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at least `value`."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= value)


def histogram(
    chart_id: str, title: str, series: Sequence[tuple[str, Sequence[float], float | None, float | None]], bins: int = 12
) -> str:
    """Latency distribution: per series (name, values in ms, p50, p95), the share of calls per bin, bars
    side by side; dashed lines mark each series' p50 (short) and p95 (long)."""
    width, height, left, right, top, bottom = 900, 320, 48, 12, 30, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    largest = max((v for _, values, _, _ in series for v in values), default=0.0)
    step = _nice_step(largest / bins)
    bins = max(1, math.floor(largest / step) + 1)
    top_value = bins * step
    shares = []
    for _, values, _, _ in series:
        counts = [0] * bins
        for v in values:
            counts[min(bins - 1, int(v / step))] += 1
        shares.append([c / len(values) if values else 0.0 for c in counts])
    highest = max((s for row in shares for s in row), default=0.0) or 1.0
    tick = 0.1 if highest <= 0.5 else 0.2
    ticks = max(1, math.ceil(round(highest / tick, 6)))
    peak = ticks * tick
    body = [_legend([name for name, *_ in series], left, 16)]
    for k in range(0, ticks + 1):
        y = top + plot_h * (1 - k / ticks)
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        body.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" '
            f'text-anchor="end" {FONT}>{k * tick * 100:.0f} %</text>'
        )
    bin_w = plot_w / bins
    bar_w = max(2.0, (bin_w - 4) / max(1, len(series)))
    for s, row in enumerate(shares):
        for b, share in enumerate(row):
            if not share:
                continue
            h = plot_h * share / peak
            x = left + b * bin_w + 2 + s * bar_w
            label = f"{series[s][0]} : {share * 100:.1f} % des appels entre {b * step:.0f} et {(b + 1) * step:.0f} ms"
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{h:.1f}" fill="{color(s)}"><title>{escape(label)}</title></rect>'
            )
    for s, (name, _, p50, p95) in enumerate(series):
        for value, label, length in ((p50, "p50", 0.55), (p95, "p95", 1.0)):
            if value is None:
                continue
            x = left + plot_w * min(1.0, value / top_value)
            body.append(
                f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h:.1f}" '
                f'y2="{top + plot_h * (1 - length):.1f}" stroke="{color(s)}" stroke-dasharray="4 3" '
                f'stroke-width="1.5"><title>{escape(f"{name} {label} : {value:.0f} ms")}</title></line>'
            )
    for k in range(0, bins + 1, 1 if bins <= 10 else 2):
        x = left + k * bin_w
        body.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" font-size="10" '
            f'text-anchor="middle" {FONT}>{k * step:.0f}</text>'
        )
    body.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" font-size="11" '
        f'text-anchor="middle" {FONT}>latence (ms) — tirets : p50 (courts) et p95 (longs)</text>'
    )
    body.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#6b7280"/>')
    return _svg(chart_id, title, width, height, "".join(body))


def horizontal_bars(chart_id: str, title: str, items: Sequence[tuple[str, float | None, str]]) -> str:
    """One bar per item (label, rate 0..1 or None, annotation)."""
    row_h, left, right, top = 30, 220, 160, 12
    width, height = 900, top * 2 + row_h * max(1, len(items))
    plot_w = width - left - right
    body = []
    for k in range(0, 5):
        x = left + plot_w * k / 4
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - top}" stroke="#e5e7eb"/>')
    for i, (label, value, note) in enumerate(items):
        y = top + i * row_h
        body.append(
            f'<text x="{left - 8}" y="{y + row_h / 2 + 4:.1f}" '
            f'font-size="11" text-anchor="end" {FONT}>{escape(label)}</text>'
        )
        if value is None:
            body.append(
                f'<text x="{left + 4}" y="{y + row_h / 2 + 4:.1f}" '
                f'font-size="11" fill="#6b7280" {FONT}>non mesuré</text>'
            )
            continue
        w = plot_w * max(0.0, min(1.0, value))
        body.append(
            f'<rect class="bar" x="{left}" y="{y + 5}" width="{max(w, 1.0):.1f}" height="{row_h - 10}" '
            f'fill="{color(i)}"><title>{escape(f"{label} : {value * 100:.1f} %")}</title></rect>'
        )
        body.append(
            f'<text x="{left + w + 6:.1f}" y="{y + row_h / 2 + 4:.1f}" '
            f'font-size="11" {FONT}>{value * 100:.1f} % {escape(note)}</text>'
        )
    return _svg(chart_id, title, width, height, "".join(body))
