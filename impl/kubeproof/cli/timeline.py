"""One-line, human descriptions of trace events (for the replay table and the diagram)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from kubeproof.sim.observe import Event

_ROLE = {
    "StateFollower": "follower",
    "StateCandidate": "candidate",
    "StatePreCandidate": "pre-candidate",
    "StateLeader": "LEADER",
}


def _data(text: Any) -> str:
    try:
        raw = base64.b64decode(str(text))
        return raw.decode("ascii") if raw.isascii() and raw.isalnum() else repr(raw)
    except (ValueError, UnicodeDecodeError):
        return str(text)


def _msg(m: Mapping[str, Any]) -> str:
    kind = str(m.get("type", "?"))
    parts = [f"{kind} {m.get('from', 0)}->{m.get('to', 0)} t{m.get('term', 0)}"]
    if kind in ("MsgApp", "MsgAppResp", "MsgVote", "MsgPreVote"):
        parts.append(f"i{m.get('index', 0)}/lt{m.get('log_term', 0)}")
    if m.get("entries"):
        parts.append(f"+{len(m['entries'])}e")
    if m.get("commit"):
        parts.append(f"c{m['commit']}")
    if m.get("reject"):
        parts.append(f"REJECT hint {m.get('reject_hint', 0)}")
    return " ".join(parts)


def describe(event: Event) -> str:
    p = event.payload
    k = event.kind
    if k == "deliver":
        text = f"#{p.get('id')} {p.get('type')} from {p.get('from')} t{p.get('term')}"
        if p.get("result") != "ok":
            text += f" [{p.get('result')}]"
    elif k == "drop":
        text = f"#{p.get('id')} {p.get('type')} from {p.get('from')} lost ({p.get('reason')})"
    elif k == "duplicate":
        text = f"#{p.get('id')} {p.get('type')} duplicated as #{p.get('copy')}"
    elif k == "process_ready":
        bits = []
        if "entries" in p:
            ents = p["entries"]
            bits.append(f"persist {len(ents)} entr{'y' if len(ents) == 1 else 'ies'}")
        if "hard_state" in p:
            hs = p["hard_state"]
            bits.append(f"hs t{hs.get('term', 0)} v{hs.get('vote', 0)} c{hs.get('commit', 0)}")
        if "sent" in p:
            sent = p["sent"]
            shown = ", ".join(f"#{s['id']} {_msg(s['msg'])}" for s in sent[:3])
            more = f" +{len(sent) - 3} more" if len(sent) > 3 else ""
            bits.append(f"send {shown}{more}")
        if "applied" in p:
            ap = p["applied"]
            bits.append(f"apply {ap[0].get('index')}..{ap[-1].get('index')}")
        if "acknowledged" in p:
            bits.append("ack " + ", ".join(_data(d) for d in p["acknowledged"]))
        text = "; ".join(bits) or "(empty Ready)"
    elif k == "crash":
        text = "CRASH" + (" (unprocessed Ready lost)" if p.get("lost_ready") else "")
    elif k == "restart":
        text = f"restart, incarnation {p.get('incarnation')}, term {p.get('term', '?')}"
    elif k == "partition":
        cut = p.get("cut", [])
        text = "PARTITION cut " + " ".join(f"{u}->{v}" for u, v in cut)
    elif k == "heal":
        text = "heal: all links up"
    elif k == "propose":
        text = f"client proposes {_data(p.get('data'))}: {p.get('result')}"
    else:
        text = ""
    became = p.get("became")
    if became:
        role = _ROLE.get(str(became.get("role")), str(became.get("role")))
        text = (text + "; " if text else "") + f"becomes {role} (term {became.get('term')})"
    err = p.get("error")
    if err:
        text += f"; RAISED {err.get('invariant')}: {err.get('detail')}"
    return text
