"""The dashboard's chart (OPS-07): the last hour of connected clients and sync
lag as an SVG drawn on the server. Presentation attributes only (no style
attribute, no script), so the pages' Content-Security-Policy allows it; the
text is escaped. Two panels over the same time axis, each scaled to its own
maximum."""

from __future__ import annotations

from html import escape

from .sampler import WINDOW, Sample

W, H, PAD, GAP = 600, 220, 40, 20
PANEL = (H - 2 * PAD - GAP) / 2


def _path(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _panel(samples: list[Sample], now: float, top: float, value, label: str, unit: str, colour: str,
           empty: str = "no samples yet") -> list[str]:
    vals = [(s.at, value(s)) for s in samples if value(s) is not None]
    high = max((v for _t, v in vals), default=0)
    peak = high or 1
    out = [f'<text x="{PAD}" y="{top - 4:.0f}" font-size="11" fill="#333">{escape(label)}'
           + (f' (max {escape(_fmt(high))}{escape(unit)})' if vals else "") + '</text>',
           f'<line x1="{PAD}" y1="{top + PANEL:.1f}" x2="{W - PAD}" y2="{top + PANEL:.1f}" stroke="#999" '
           'stroke-width="1"/>']
    pts = [(PAD + (W - 2 * PAD) * (1 - (now - t) / WINDOW), top + PANEL - PANEL * v / peak) for t, v in vals]
    if pts:
        out.append(f'<polyline points="{_path(pts)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    else:
        out.append(f'<text x="{W / 2:.0f}" y="{top + PANEL / 2:.0f}" font-size="11" fill="#666" '
                   f'text-anchor="middle">{escape(empty)}</text>')
    return out


def _fmt(v: float) -> str:
    return f"{v:g}" if v < 100 else f"{v:.0f}"


def svg(samples: list[Sample], now: float, *, lag: bool = True) -> str:
    """The chart as an inline <svg> element; ``lag``: draw the sync-lag panel (a pair's appliances)."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
             f'role="img" aria-labelledby="chart-title" id="dashboard-chart" data-samples="{len(samples)}">',
             '<title id="chart-title">Connected clients and sync lag over the last hour</title>']
    parts += _panel(samples, now, PAD, lambda s: s.clients, "Connected clients", "", "#1f5fa8")
    parts += _panel(samples, now, PAD + PANEL + GAP, lambda s: s.lag_seconds if lag else None,
                    "Sync lag", " s", "#b5461b", "no samples yet" if lag else "not in a failover pair")
    parts += [f'<text x="{PAD}" y="{H - 8}" font-size="10" fill="#666">-60 min</text>',
              f'<text x="{W - PAD}" y="{H - 8}" font-size="10" fill="#666" text-anchor="end">now</text>', "</svg>"]
    return "\n".join(parts)
