"""Charts drawn on the server as SVG: no script, no CDN, text in the page's language (system CJK
fonts), colours told apart without colour (the legend and the table beside every chart)."""

from __future__ import annotations

from html import escape

from handoff.reports.query import Table

# Okabe–Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
FONT = "system-ui,'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif"
W, H = 640, 260
L, R, T, B = 48, 12, 28, 52


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _nice_max(m: float) -> float:
    if m <= 0:
        return 1.0
    mag = 10 ** len(str(int(m))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if step * mag >= m:
            return step * mag
    return m


def _fmt(v: float) -> str:
    return str(int(v)) if v == int(v) else f"{v:.1f}"


def chart(t: Table, zh: bool) -> str:
    """The table as a bar or line chart (an empty string when there is nothing to draw)."""
    cols = t.plotted()
    if t.chart is None or not cols or not t.rows:
        return ""
    label = t.title[1] if zh else t.title[0]
    names = [t.columns[i][2] if zh else t.columns[i][1] for i in cols]
    values = [[_num(r[i]) for i in cols] for r in t.rows]
    top = _nice_max(max((v for row in values for v in row if v is not None), default=0.0))
    pw, ph = W - L - R, H - T - B
    out = [f'<svg class="chart" data-chart="{t.id}" viewBox="0 0 {W} {H}" width="100%" role="img" '
           f'aria-label="{escape(label)}" style="font-family:{FONT};font-size:11px">',
           f"<title>{escape(label)}</title>"]
    for k in range(5):  # grid and y axis
        y = T + ph - ph * k / 4
        out.append(f'<line x1="{L}" x2="{W - R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                   f'<text x="{L - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#4b5563">{_fmt(top * k / 4)}</text>')
    n = len(t.rows)
    every = max(1, n // 12)
    for j, row in enumerate(t.rows):  # x labels, thinned
        if j % every:
            continue
        x = L + pw * (j + 0.5) / n
        out.append(f'<text x="{x:.1f}" y="{T + ph + 14}" text-anchor="end" fill="#4b5563" '
                   f'transform="rotate(-35 {x:.1f} {T + ph + 14})">{escape(str(row[0]))}</text>')
    if t.chart == "bar":
        gw = pw / n
        bw = max(1.0, gw * 0.8 / len(cols))
        for j, vals in enumerate(values):
            for k, v in enumerate(vals):
                if v is None:
                    continue
                h = ph * v / top
                x = L + gw * j + gw * 0.1 + bw * k
                out.append(f'<rect x="{x:.1f}" y="{T + ph - h:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                           f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(str(t.rows[j][0]))} · '
                           f'{escape(names[k])}: {_fmt(v)}</title></rect>')
    else:
        for k in range(len(cols)):
            pts = [(L + pw * (j + 0.5) / n, T + ph - ph * yv / top) for j, vals in enumerate(values)
                   if (yv := vals[k]) is not None]
            if pts:
                out.append(f'<polyline fill="none" stroke-width="2" stroke="{PALETTE[k % len(PALETTE)]}" '
                           f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}"/>')
    x = L
    for k, name in enumerate(names):  # legend
        out.append(f'<rect x="{x}" y="8" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>'
                   f'<text x="{x + 14}" y="17" fill="#111827">{escape(name)}</text>')
        x += 24 + 7 * len(name) * (2 if zh and not name.isascii() else 1)
    out.append("</svg>")
    return "".join(out)
