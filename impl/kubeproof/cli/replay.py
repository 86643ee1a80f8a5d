"""`kubeproof replay TRACE`: re-execute a trace, show how it ended, say if it matched.

A composition root: the trace's header says which simulation made it (the
Raft harness, the replicated store, the API simulation); `kubeproof.sim.replay`
runs it again with the spec's checkers for that target (wired here), and
this command prints the timeline near the end, the invariants' verdict and
the first divergence, if any.

Exit status: 0 the replay matched the trace (whatever the trace's outcome,
which is printed), 1 the replay diverged from the trace, 2 the file is not a
readable trace or cannot be replayed (bad input).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from kubeproof.sim.apitrace import ApiTraceHeader
from kubeproof.sim.observe import Event, Violation
from kubeproof.sim.replay import (
    Checkers,
    ReplayError,
    ReplayResult,
    load_factory,
    open_trace,
    replay,
)
from kubeproof.sim.trace import (
    EVENT_KINDS,
    KVTraceHeader,
    TraceFormatError,
    TraceHeader,
    TraceOutcome,
    event_to_json,
)

from .diagram import render_html
from .timeline import describe


def _violation_json(v: Violation | None) -> dict[str, Any] | None:
    return TraceOutcome(v).to_json() if v is not None else None


def _factory(r: ReplayResult) -> str:
    h = r.header
    if isinstance(h, KVTraceHeader):
        return h.member
    if isinstance(h, ApiTraceHeader):
        return h.server
    return h.node


def _json_report(path: Path, r: ReplayResult) -> dict[str, Any]:
    d = r.divergence
    return {
        "trace": str(path),
        "target": r.target,
        "mode": r.mode,
        "seed": r.header.seed,
        "driver": r.header.driver if isinstance(r.header, TraceHeader) else "random",
        "node": _factory(r),
        "matched": r.matched,
        "divergence": None
        if d is None
        else {
            "step": d.step,
            "where": d.where,
            "expected": d.expected,
            "actual": d.actual,
            "message": d.describe(),
        },
        "steps": r.steps,
        "recorded_outcome": r.recorded.to_json() if r.recorded is not None else None,
        "violation": _violation_json(r.violation),
        "timeline": [event_to_json(e) for e in r.tail],
    }


_RAFT_WORDS = EVENT_KINDS - {"process_ready"}
"""The kinds a store trace words as the Raft harness's (`timeline.describe`): its Readys
(entries and applications as index ranges) and client events are its own."""


def _describe(r: ReplayResult, e: Event) -> str:
    p = e.payload
    if r.target == "raft" or (r.target == "kv" and e.kind in _RAFT_WORDS):
        return describe(e)
    if r.target == "kv" and e.kind == "process_ready":
        bits = [f"{key} {_span(p[key])}" for key in ("entries", "applied") if key in p]
        if "sent" in p:
            sent = p["sent"]
            bits.append(
                "send "
                + ", ".join(f"#{m['id']} {m['msg'].get('type')}" for m in sent[:3])
                + (f" +{len(sent) - 3} more" if len(sent) > 3 else "")
            )
        return "; ".join(bits) or "(Ready)"
    if r.target == "api" and e.kind == "request":
        why = f" {p['reason']}" if p.get("reason") else ""
        return (
            f"{p.get('user')}: {p.get('method')} {p.get('path')} -> {p.get('status')}{why} "
            f"(server {p.get('server')})"
        )
    # The store's client events, the API's other events: their payload, compactly.
    parts = []
    for key, value in sorted(p.items()):
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        parts.append(f"{key}={text if len(text) <= 60 else text[:57] + '...'}")
    return " ".join(parts)


def _span(v: Any) -> str:
    return f"{v[0]}..{v[-1]}" if isinstance(v, list) and v else str(v)


def _summary(r: ReplayResult) -> str:
    h = r.header
    if isinstance(h, ApiTraceHeader):
        c = h.config
        return (
            f"API trace, seed {h.seed}, {c.servers} servers, {c.clients} clients, "
            f"{c.steps} steps, faults {','.join(sorted(c.faults)) or 'none'}, "
            f"server {h.server}, kubeproof {h.kubeproof}"
        )
    sim = h.config.sim if isinstance(h, KVTraceHeader) else h.config
    what = f"store trace, seed {h.seed}" if isinstance(h, KVTraceHeader) else f"seed {h.seed}"
    tail = (
        f"member {h.member}"
        if isinstance(h, KVTraceHeader)
        else f"driver {h.driver}, node {h.node}"
    )
    return (
        f"{what}, {sim.nodes} nodes, {sim.steps} steps, faults "
        f"{','.join(sorted(f.value for f in sim.faults)) or 'none'}, "
        f"{tail}, kubeproof {h.kubeproof}"
    )


def _timeline(r: ReplayResult, rows: int) -> Table:
    table = Table(title="timeline (last events replayed)", show_lines=False)
    for col, just in (("step", "right"), ("time", "right"), ("node", "right"), ("event", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    table.add_column("what")
    for e in list(r.tail)[-rows:]:
        style = "red" if "error" in e.payload or e.kind == "crash" else None
        if r.divergence is not None and e.step == r.divergence.step:
            style = "bold yellow"
        table.add_row(
            str(e.step),
            str(e.time),
            "-" if e.node is None else str(e.node),
            e.kind,
            _describe(r, e),
            style=style,
        )
    return table


@click.command("replay")
@click.argument("trace", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--by",
    "mode",
    type=click.Choice(["auto", "seed", "schedule"]),
    default="auto",
    show_default=True,
    help="Replay by seed+config, or by the recorded schedule (auto: seed for scheduler traces).",
)
@click.option(
    "--tail", type=click.IntRange(min=1), default=30, show_default=True, help="Timeline rows shown."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a space-time diagram (SVG in HTML) of the end of the run.",
)
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="Events drawn by --html.",
)
@click.option("--node-factory", default=None, help="module:attr of the node class to run.")
def replay_command(
    trace: Path,
    mode: str,
    tail: int,
    as_json: bool,
    html_out: Path | None,
    window: int,
    node_factory: str | None,
) -> None:
    """Re-execute TRACE (a Raft, store or API trace: its header says which); show the
    timeline near the end and the violation, if any."""
    from kubeproof.spec.api import api_checkers
    from kubeproof.spec.kv import kv_checkers
    from kubeproof.spec.raft import raft_checkers

    if not trace.exists():
        raise click.BadParameter(f"{trace}: no such file", param_hint="TRACE")
    try:
        if html_out is not None:
            with open_trace(trace) as reader:
                if not isinstance(reader.header, TraceHeader):
                    raise ReplayError(f"{trace}: --html draws Raft harness traces; this one is not")
        factory = load_factory(node_factory) if node_factory is not None else None
        result = replay(
            trace,
            mode=mode,  # type: ignore[arg-type]
            checkers=Checkers(raft=raft_checkers, kv=kv_checkers, api=api_checkers),
            node_factory=factory,
            tail=max(tail, window if html_out is not None else 0),
        )
    except TraceFormatError as e:
        raise click.UsageError(f"not a readable trace: {e}") from None
    except ReplayError as e:
        raise click.UsageError(str(e)) from None

    if html_out is not None:
        assert isinstance(result.header, TraceHeader)
        events = list(result.tail)[-window:]
        members = list(result.header.config.voters)
        note = (
            f"seed {result.header.seed}, {result.header.config.nodes} nodes, replay by "
            f"{result.mode}: " + ("matched the trace" if result.matched else "DIVERGED")
        )
        html_out.parent.mkdir(parents=True, exist_ok=True)
        html_out.write_text(
            render_html(
                events,
                members,
                title=f"kubeproof trace {trace.name}",
                violation=result.violation,
                note=note,
            ),
            encoding="utf-8",
        )

    if as_json:
        click.echo(json.dumps(_json_report(trace, result), sort_keys=True))
        sys.exit(0 if result.matched else 1)

    out = Console()
    out.print(f"[bold]{trace}[/bold]: {_summary(result)}")
    out.print(_timeline(result, tail))
    v = result.violation
    if v is not None:
        out.print(f"[red bold]violation {v.invariant}[/red bold] at step {v.step}: {v.message}")
        if v.evidence:
            out.print(json.dumps(TraceOutcome(v).to_json()["evidence"], sort_keys=True, indent=2))
    else:
        out.print(f"[green]no violation[/green] in {result.steps} replayed events")
    if result.matched:
        out.print(
            f"[green]replay (by {result.mode}) matched the trace: {result.steps} events "
            "identical, same outcome[/green]"
        )
    else:
        assert result.divergence is not None
        out.print(
            f"[yellow bold]replay (by {result.mode}) DIVERGED[/yellow bold] at "
            f"{result.divergence.describe()}"
        )
    if html_out is not None:
        out.print(f"space-time diagram: {html_out}")
    sys.exit(0 if result.matched else 1)


command = replay_command
