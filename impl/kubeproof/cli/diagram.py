"""A space-time diagram of trace events: an HTML page holding one SVG.

Members are vertical lanes, time runs down (one row per event, so events at
the same virtual time stay apart), messages are arrows from the row where
the sender's Ready sent them to the row where they were delivered.  Lost
messages end in a red cross; a crashed member's lane is dashed until it
restarts; a leader's lane is drawn thick.  Hovering over anything shows the
event in words (`timeline.describe`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from kubeproof.sim.observe import Event, Violation

from .timeline import describe

_COLOURS = {
    "tick": "#bbbbbb",
    "deliver": "#1f77b4",
    "drop": "#d62728",
    "duplicate": "#9467bd",
    "process_ready": "#2ca02c",
    "crash": "#d62728",
    "restart": "#ff7f0e",
    "propose": "#8c564b",
}

_ROW = 16
_LANE = 150
_LEFT = 140
_TOP = 60


def render_html(
    events: Sequence[Event],
    members: Sequence[int],
    *,
    title: str,
    violation: Violation | None = None,
    note: str = "",
) -> str:
    """The page for `events` (a window of a trace) over lanes `members`."""
    lane_x = {m: _LEFT + i * _LANE for i, m in enumerate(members)}
    height = _TOP + _ROW * (len(events) + 2) + (60 if violation else 20)
    width = _LEFT + _LANE * max(len(members), 1) + 40
    row_y = {ev.step: _TOP + _ROW * (i + 1) for i, ev in enumerate(events)}
    parts: list[str] = []
    add = parts.append
    add(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="monospace" font-size="11">'
    )
    add(
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#1f77b4"/></marker></defs>'
    )
    for m, x in lane_x.items():
        add(
            f'<text x="{x}" y="{_TOP - 20}" text-anchor="middle" font-weight="bold">node {m}</text>'
        )

    # Lane segments: thin while alive, thick while leader, dashed while down.
    first_y = _TOP
    last_y = _TOP + _ROW * (len(events) + 1)
    state = {m: ("alive", first_y) for m in members}

    def close_segment(m: int, y: int) -> None:
        kind, start = state[m]
        x = lane_x[m]
        style = {
            "alive": 'stroke="#444" stroke-width="1"',
            "leader": 'stroke="#2ca02c" stroke-width="5"',
            "down": 'stroke="#d62728" stroke-width="1" stroke-dasharray="4,4"',
        }[kind]
        add(f'<line x1="{x}" y1="{start}" x2="{x}" y2="{y}" {style}/>')

    for ev in events:
        if ev.node is None or ev.node not in lane_x:
            continue
        y = row_y[ev.step]
        new: str | None = None
        if ev.kind == "crash":
            new = "down"
        elif ev.kind == "restart":
            new = "alive"
        became = ev.payload.get("became")
        if isinstance(became, dict):
            new = "leader" if became.get("role") == "StateLeader" else "alive"
        if new is not None and new != state[ev.node][0]:
            close_segment(ev.node, y)
            state[ev.node] = (new, y)
    for m in members:
        close_segment(m, last_y)

    # Messages: where each id was sent (row, lane), then arrows to where it ended.
    sent_at: dict[int, tuple[int, int, str]] = {}
    for ev in events:
        if ev.kind == "process_ready" and ev.node in lane_x:
            for s in ev.payload.get("sent", []):
                msg = s.get("msg", {})
                sent_at[int(s["id"])] = (row_y[ev.step], lane_x[ev.node], str(msg.get("type")))
        elif ev.kind == "duplicate":
            mid, copy = ev.payload.get("id"), ev.payload.get("copy")
            if isinstance(mid, int) and isinstance(copy, int) and mid in sent_at:
                sent_at[copy] = sent_at[mid]
    for ev in events:
        if ev.kind not in ("deliver", "drop") or ev.node not in lane_x:
            continue
        mid = ev.payload.get("id")
        if not isinstance(mid, int):
            continue
        y2 = row_y[ev.step]
        x2 = lane_x[ev.node]
        frm = ev.payload.get("from")
        if mid in sent_at:
            y1, x1, _ = sent_at[mid]
        elif isinstance(frm, int) and frm in lane_x:
            y1, x1 = _TOP, lane_x[frm]  # sent before the window
        else:
            continue
        ok = ev.kind == "deliver" and ev.payload.get("result") == "ok"
        tip = html.escape(f"step {ev.step} t={ev.time}: {describe(ev)}")
        if ok:
            add(
                f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#1f77b4" '
                f'stroke-width="1" marker-end="url(#arrow)"><title>{tip}</title></line>'
            )
        else:
            mx, my = (x1 + x2) // 2, (y1 + y2) // 2
            add(
                f'<line x1="{x1}" y1="{y1}" x2="{mx}" y2="{my}" stroke="#d62728" '
                f'stroke-dasharray="3,3"><title>{tip}</title></line>'
            )
            add(
                f'<text x="{mx}" y="{my + 4}" fill="#d62728" text-anchor="middle">'
                f"x<title>{tip}</title></text>"
            )

    # Event dots, row labels, cluster-wide events as bands.
    for ev in events:
        y = row_y[ev.step]
        tip = html.escape(f"step {ev.step} t={ev.time} {ev.kind}: {describe(ev)}")
        add(f'<text x="8" y="{y + 4}" fill="#888">{ev.step} @{ev.time}</text>')
        if ev.node is None or ev.node not in lane_x:
            add(
                f'<rect x="{_LEFT - 20}" y="{y - 6}" width="{width - _LEFT}" height="12" '
                f'fill="#ffdd88" opacity="0.5"><title>{tip}</title></rect>'
            )
            add(f'<text x="{_LEFT - 16}" y="{y + 4}">{html.escape(describe(ev))}</text>')
            continue
        colour = _COLOURS.get(ev.kind, "#000")
        if "error" in ev.payload:
            colour = "#ff0000"
        r = 2 if ev.kind == "tick" else 4
        add(
            f'<circle cx="{lane_x[ev.node]}" cy="{y}" r="{r}" fill="{colour}">'
            f"<title>{tip}</title></circle>"
        )
    if violation is not None:
        y = _TOP + _ROW * (len(events) + 2)
        text = html.escape(
            f"VIOLATION {violation.invariant} at step {violation.step}: {violation.message}"
        )
        add(
            f'<rect x="4" y="{y}" width="{width - 8}" height="40" fill="#ffe0e0" '
            f'stroke="#d62728"/><text x="10" y="{y + 24}" fill="#d62728">{text}</text>'
        )
    add("</svg>")
    legend = (
        "lanes: thin = alive, thick green = leader, dashed red = down; blue arrows = "
        "delivered messages, red dashed with x = lost; hover for details"
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h2>{html.escape(title)}</h2><p>{html.escape(note)}</p><p>{legend}</p>"
        + "".join(parts)
        + "</body></html>\n"
    )
