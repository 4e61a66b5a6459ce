"""Inline SVG plots and graphs, drawn on the server so they need no script and no library.

Every piece of text goes through `escape`, so a hostile title or name stays text.
Colours are presentation attributes (not style attributes), which the page's CSP allows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac", "#1f77b4", "#8c564b"]


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _fill_years(counts: dict[str, int]) -> list[tuple[str, int]]:
    years = sorted(int(y) for y in counts if str(y).isdigit())
    if not years:
        return []
    return [(str(y), int(counts.get(str(y), 0))) for y in range(years[0], years[-1] + 1)]


def trend_bars(counts: dict[str, int], label: str, width: int = 360, height: int = 120) -> Markup:
    """Records per year as bars, with the count in each bar's tooltip."""
    series = _fill_years(counts)
    if not series:
        return Markup('<p class="muted">No dated records.</p>')
    top = max(n for _, n in series) or 1
    pad_l, pad_b, pad_t = 28, 18, 8
    inner_w, inner_h = width - pad_l - 4, height - pad_b - pad_t
    step = inner_w / len(series)
    parts = [
        f'<svg class="plot" viewBox="0 0 {width} {height}" width="100%" role="img"'
        f' aria-label="{escape(label)}"><title>{escape(label)}</title>',
        f'<text x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end" class="tick">{top}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + inner_h}" text-anchor="end" class="tick">0</text>',
        f'<line x1="{pad_l}" y1="{pad_t + inner_h}" x2="{width - 4}" y2="{pad_t + inner_h}" class="axis"/>',
    ]
    every = max(1, math.ceil(len(series) / 8))
    for i, (year, n) in enumerate(series):
        h = inner_h * n / top
        x = pad_l + i * step
        parts.append(
            f'<rect x="{x + step * 0.12:.1f}" y="{pad_t + inner_h - h:.1f}" width="{step * 0.76:.1f}"'
            f' height="{h:.1f}" class="bar"><title>{year}: {n}</title></rect>'
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - 4}" text-anchor="middle" class="tick">{year}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def trend_lines(series: Sequence[tuple[str, dict[str, int]]], label: str,
                width: int = 640, height: int = 220) -> Markup:
    """Several yearly count series as lines with a legend (the Trends page)."""
    years = sorted({int(y) for _, c in series for y in c if str(y).isdigit()})
    if not years:
        return Markup('<p class="muted">No dated records.</p>')
    span = list(range(years[0], years[-1] + 1))
    top = max((max(c.values(), default=0) for _, c in series), default=0) or 1
    pad_l, pad_b, pad_t, legend_w = 30, 20, 10, 190
    inner_w, inner_h = width - pad_l - legend_w, height - pad_b - pad_t
    dx = inner_w / max(1, len(span) - 1)
    parts = [
        f'<svg class="plot" viewBox="0 0 {width} {height}" width="100%" role="img"'
        f' aria-label="{escape(label)}"><title>{escape(label)}</title>',
        f'<line x1="{pad_l}" y1="{pad_t + inner_h}" x2="{pad_l + inner_w}" y2="{pad_t + inner_h}" class="axis"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end" class="tick">{top}</text>',
    ]
    every = max(1, math.ceil(len(span) / 8))
    for i, y in enumerate(span):
        if i % every == 0:
            parts.append(f'<text x="{pad_l + i * dx:.1f}" y="{height - 4}" text-anchor="middle"'
                         f' class="tick">{y}</text>')
    for k, (name, counts) in enumerate(series):
        pts = " ".join(
            f"{pad_l + i * dx:.1f},{pad_t + inner_h - inner_h * counts.get(str(y), 0) / top:.1f}"
            for i, y in enumerate(span)
        )
        c = colour(k)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2">'
                     f"<title>{escape(name)}</title></polyline>")
        ly = pad_t + 12 + k * 16
        parts.append(f'<rect x="{width - legend_w + 8}" y="{ly - 9}" width="10" height="10" fill="{c}"/>')
        parts.append(f'<text x="{width - legend_w + 22}" y="{ly}" class="legend">{escape(_clip(name, 28))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def radial_graph(centre: dict[str, Any], rings: Sequence[Sequence[dict[str, Any]]],
                 edges: Sequence[tuple[str, str, float]], label: str, size: int = 640) -> Markup:
    """A node in the middle, its neighbours on a ring, theirs on an outer ring; nodes are links.

    Nodes are dicts with id, label, href and an optional group (colour index).
    """
    cx = cy = size / 2
    pad = size // 4
    pos: dict[str, tuple[float, float]] = {centre["id"]: (cx, cy)}
    radii = [size * 0.24, size * 0.42]
    for ring, radius in zip(rings, radii):
        n = max(1, len(ring))
        for i, node in enumerate(ring):
            angle = 2 * math.pi * i / n - math.pi / 2
            pos[node["id"]] = (cx + radius * math.cos(angle), cy + radius * math.sin(angle))
    parts = [
        f'<svg class="graph" viewBox="{-pad} 0 {size + 2 * pad} {size}" width="100%" role="img"'
        f' aria-label="{escape(label)}"><title>{escape(label)}</title>'
    ]
    for a, b, w in edges:
        if a in pos and b in pos:
            (x1, y1), (x2, y2) = pos[a], pos[b]
            parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" class="edge"'
                         f' stroke-width="{0.6 + 2.4 * max(0.0, min(1.0, w)):.2f}"/>')
    nodes = [(centre, 0, 9.0)] + [(n, d + 1, 6.5 if d == 0 else 4.5) for d, ring in enumerate(rings) for n in ring]
    for node, depth, r in nodes:
        x, y = pos[node["id"]]
        fill = colour(node.get("group", 0))
        text = escape(_clip(node["label"], 34 if depth < 2 else 22))
        anchor = "middle" if depth == 0 else ("start" if x >= cx else "end")
        tx = x if depth == 0 else x + (r + 3 if x >= cx else -r - 3)
        ty = y - r - 4 if depth == 0 else y + 4
        label_el = (f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}" class="node-label d{depth}">'
                    f"{text}</text>") if depth < 2 else ""
        parts.append(
            f'<a href="{escape(node["href"])}"><circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}"'
            f' class="node d{depth}"><title>{escape(node["label"])}</title></circle>{label_el}</a>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
