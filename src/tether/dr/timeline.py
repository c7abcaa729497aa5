"""A drill's timeline as a small server-rendered SVG (no script): one axis in
seconds after the fault, a marker and a label for each step the drill saw
(fault, detection, promotion, traffic swing, clients back)."""

from __future__ import annotations

from html import escape

STEPS = (("fault", "fault", "#c0392b"), ("detection", "detection", "#e67e22"),
         ("promotion", "promotion", "#2980b9"), ("traffic_swing", "traffic swing", "#8e44ad"),
         ("clients_back", "clients back", "#27ae60"))
WIDTH, HEIGHT, LEFT, RIGHT = 640, 150, 40, 40


def svg(offsets: dict, title: str) -> str:
    """``offsets``: seconds after the fault per step (None: not seen)."""
    seen = [(k, label, colour, float(offsets[k])) for k, label, colour in STEPS if offsets.get(k) is not None]
    span = max([s[3] for s in seen] + [0.001])
    scale = (WIDTH - LEFT - RIGHT) / span
    y = 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="drill-timeline" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
             f'<title>{escape(title)}</title>',
             f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#555" stroke-width="2"/>',
             f'<text x="{LEFT}" y="{y + 40}" font-size="11">0 s</text>',
             f'<text x="{WIDTH - RIGHT}" y="{y + 40}" font-size="11" text-anchor="end">{span:.2f} s</text>']
    for i, (key, label, colour, at) in enumerate(seen):
        x = LEFT + at * scale
        ly = y - 18 - (i % 2) * 24
        parts.append(f'<g class="step" data-step="{key}" data-seconds="{at:.3f}">'
                     f'<circle cx="{x:.1f}" cy="{y}" r="6" fill="{colour}"/>'
                     f'<line x1="{x:.1f}" y1="{y - 6}" x2="{x:.1f}" y2="{ly + 4}" stroke="{colour}"/>'
                     f'<text x="{x:.1f}" y="{ly}" font-size="11" text-anchor="middle">{escape(label)} '
                     f'{at:.2f} s</text></g>')
    parts.append("</svg>")
    return "".join(parts)
