"""`kubeproof mc`: exhaust a bounded Raft state space, breadth first; shortest counterexample.

This is a composition root: it wires the model checker
(`kubeproof.models.mc`) to the spec's checkers
(`kubeproof.spec.raft.raft_checkers`) and to a node class (the real
`RaftNode`, or another through `--node-factory module:attr`).

Exit status: 0 the bounds were exhausted without a violation, 1 a
violation (its shortest counterexample is written as a trace that
`kubeproof replay` runs) or the exploration was cut short by --max-states,
2 bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from kubeproof.models.mc.config import McConfig
from kubeproof.raft import RaftNode
from kubeproof.sim.member import NodeFactory

from .campaign_runner import load_node_factory, progress_bar

_D = McConfig()
"""The defaults (the model checker's own, so that the CLI cannot drift from them)."""

DEFAULT_TRACE = Path("failures/mc-counterexample.jsonl")


def _limit(text: str) -> int | None:
    """'none'/'unlimited' -> None, else a non-negative integer."""
    t = text.strip().lower()
    if t in ("none", "unlimited", "inf"):
        return None
    try:
        n = int(t)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number (or 'none' for unlimited)") from None
    if n < 0:
        raise click.BadParameter(f"{text!r} must be >= 0")
    return n


@click.command("mc")
@click.option("--nodes", type=click.IntRange(1, 7), default=_D.nodes, show_default=True)
@click.option("--max-term", type=click.IntRange(min=1), default=_D.max_term, show_default=True)
@click.option(
    "--max-index",
    type=click.IntRange(min=1),
    default=_D.max_index,
    show_default=True,
    help="States where any log passes this index are pruned.",
)
@click.option(
    "--max-inflight",
    type=click.IntRange(min=1),
    default=_D.max_inflight,
    show_default=True,
    help="States with more messages in flight are pruned.",
)
@click.option(
    "--max-crashes", type=click.IntRange(min=0), default=_D.max_crashes, show_default=True
)
@click.option(
    "--max-proposals", type=click.IntRange(min=0), default=_D.max_proposals, show_default=True
)
@click.option(
    "--max-drops",
    default=str(_D.max_drops).lower(),
    show_default=True,
    help="Message losses per path (or 'none').",
)
@click.option(
    "--max-duplicates", type=click.IntRange(min=0), default=_D.max_duplicates, show_default=True
)
@click.option(
    "--max-heartbeats",
    default=str(_D.max_heartbeats).lower(),
    show_default=True,
    help="Leader heartbeats per path (or 'none').",
)
@click.option("--max-depth", type=click.IntRange(min=0), default=None, help="BFS depth bound.")
@click.option(
    "--max-states",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many states (the run is then incomplete, exit 1).",
)
@click.option(
    "--ready",
    type=click.Choice(["eager", "interleaved"]),
    default=_D.ready,
    show_default=True,
    help="eager: a node's Ready is processed right after the action; interleaved: an action.",
)
@click.option(
    "--propose-at",
    type=click.Choice(["leader", "any"]),
    default=_D.propose_at,
    show_default=True,
    help="Which live members a client proposal may be sent to.",
)
@click.option(
    "--symmetry/--no-symmetry",
    default=_D.symmetry,
    show_default=True,
    help="Identify states that differ only in node ids.",
)
@click.option(
    "--restart-at-once/--crash-stays-down",
    default=_D.restart_at_once,
    show_default=True,
    help="A crashed member restarts in the same action, or later as an action of its own.",
)
@click.option(
    "--pre-vote/--no-pre-vote", default=_D.pre_vote, show_default=True, help="Run PreVote."
)
@click.option(
    "--max-size-per-msg",
    type=click.IntRange(min=0),
    default=_D.max_size_per_msg,
    show_default=True,
    help="The nodes' max_size_per_msg (0: one entry per MsgApp).",
)
@click.option("--seed", type=click.IntRange(min=0), default=_D.seed, show_default=True)
@click.option("--node-factory", default=None, help="module:attr of the node class to check.")
@click.option(
    "--trace-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Where the counterexample trace goes [{DEFAULT_TRACE}].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, no table.")
def mc_command(
    nodes: int,
    max_term: int,
    max_index: int,
    max_inflight: int,
    max_crashes: int,
    max_proposals: int,
    max_drops: str,
    max_duplicates: int,
    max_heartbeats: str,
    max_depth: int | None,
    max_states: int | None,
    ready: str,
    propose_at: str,
    symmetry: bool,
    restart_at_once: bool,
    pre_vote: bool,
    max_size_per_msg: int,
    seed: int,
    node_factory: str | None,
    trace_out: Path | None,
    as_json: bool,
) -> None:
    """Explore every interleaving of a small Raft cluster within bounds; exit 1 on a violation."""
    from kubeproof.models.mc import (
        McConfigError,
        McProgress,
        explore,
        report_json,
        report_rows,
        write_counterexample,
    )
    from kubeproof.spec.raft import raft_checkers

    drops = _limit_option(max_drops, "--max-drops")
    beats = _limit_option(max_heartbeats, "--max-heartbeats")
    try:
        cfg = McConfig(
            nodes=nodes,
            max_term=max_term,
            max_index=max_index,
            max_inflight=max_inflight,
            max_crashes=max_crashes,
            max_proposals=max_proposals,
            max_drops=drops,
            max_duplicates=max_duplicates,
            max_heartbeats=beats,
            max_depth=max_depth,
            max_states=max_states,
            ready=ready,  # type: ignore[arg-type]
            propose_at=propose_at,  # type: ignore[arg-type]
            symmetry=symmetry,
            restart_at_once=restart_at_once,
            pre_vote=pre_vote,
            max_size_per_msg=max_size_per_msg,
            seed=seed,
        )
    except McConfigError as e:
        raise click.UsageError(str(e)) from None
    factory: NodeFactory = load_node_factory(node_factory, RaftNode)

    progress = progress_bar(
        SpinnerColumn(),
        TextColumn("[bold]mc[/bold] {task.fields[status]}"),
        TimeElapsedColumn(),
        quiet=as_json,
    )

    def on_progress(p: McProgress) -> None:
        rate = p.transitions / p.elapsed if p.elapsed > 0 else 0.0
        progress.update(
            task,
            status=(
                f"states {p.states:,}  transitions {p.transitions:,}  frontier {p.frontier:,}  "
                f"depth {p.depth}  {rate:,.0f} transitions/s"
            ),
        )

    with progress:
        task = progress.add_task("explore", status="starting")
        result = explore(cfg, checkers=raft_checkers, node_factory=factory, progress=on_progress)

    trace_path: Path | None = None
    steps: tuple[str, ...] = ()
    if result.violation is not None:
        trace_path = trace_out if trace_out is not None else DEFAULT_TRACE
        again = write_counterexample(
            cfg,
            result.counterexample,
            trace_path,
            checkers=raft_checkers,
            node_factory=factory,
            expect=result.violation,
        )
        steps = again.steps

    if as_json:
        doc = report_json(result, trace=None if trace_path is None else str(trace_path))
        doc["counterexample_steps"] = list(steps)
        click.echo(json.dumps(doc, sort_keys=True))
    else:
        out = Console()
        table = Table(title="kubeproof mc", show_header=False)
        table.add_column("measure")
        table.add_column("value", justify="right")
        for label, value in report_rows(result):
            table.add_row(label, value)
        v = result.violation
        if v is None:
            table.add_row("violations", "[green]0[/green]")
        else:
            table.add_row("violation", f"[red]{v.invariant}[/red]")
        out.print(table)
        if v is not None:
            out.print(
                f"[red bold]{v.invariant}[/red bold]: {v.message}\n"
                f"shortest counterexample: {len(result.counterexample)} actions"
            )
            for i, line in enumerate(steps, start=1):
                out.print(f"  {i:3d}. {line}")
            out.print(f"trace: {trace_path}\nreplay with: kubeproof replay {trace_path}")
        elif not result.complete:
            out.print("[yellow]stopped at --max-states: the bounds were not exhausted[/yellow]")
        if result.depth == 0 and result.pruned:
            out.print(
                "[yellow]every successor of the initial state is out of the bounds: a "
                f"campaign alone sends {nodes - 1} messages (raise --max-inflight)[/yellow]"
            )
    sys.exit(0 if result.violation is None and result.complete else 1)


def _limit_option(value: str, hint: str) -> int | None:
    try:
        return _limit(value)
    except click.BadParameter as e:
        raise click.BadParameter(e.message, param_hint=hint) from None


command = mc_command
