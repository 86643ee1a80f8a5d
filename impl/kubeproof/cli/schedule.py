"""`kubeproof schedule FILE.yaml`: place pods on nodes as kube-scheduler (v1.32) would.

Reads nodes, pods and optionally a KubeSchedulerConfiguration (plus
Namespaces, Services, PriorityClasses, PodDisruptionBudgets ...) from
multi-document YAML or JSON, schedules every pending pod, and prints the
placement, the pods left pending with kube-scheduler's reason, and on
request (``--explain POD``) every plugin's filter verdict and score on
every node.  With ``--solver z3 --objective least-preemption`` the batch
solver may evict lower-priority running pods; the table marks them
"evicted" and ``--json`` lists them under ``"evicted"`` (z3 runs only).  The
configuration (FILE's or ``--config``'s) drives both paths: the greedy cycle,
and the z3 "score" objective, which scores each pod with its profile.  The
solver's time limit reads ``time.monotonic`` here, the composition root.
Exit status: 0 all pods placed (none evicted), 1 some not, 2 invalid input.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Mapping
from typing import Any

import click
from attrs import frozen
from rich.console import Console
from rich.table import Table

from kubeproof.sched.load import Cluster, InputError, load_cluster
from kubeproof.sched.model import KUBE_VERSION
from kubeproof.sched.scheduler import Explanation, Scheduler, ScheduleResult

from .placement_view import loads, placement_view


def _fail_input(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _read(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        _fail_input(f"cannot read {path}: {e}")
        raise AssertionError from e  # unreachable: _fail_input exits


def _pod_key(cluster: Cluster, name: str) -> str:
    keys = {p.key for p in cluster.pods}
    key = name if "/" in name else f"default/{name}"
    if key not in keys:
        matches = sorted(k for k in keys if k.split("/", 1)[1] == name)
        if len(matches) == 1 and "/" not in name:
            return matches[0]
        _fail_input(f"--explain: no pod named {name!r} in the input")
    return key


@frozen
class Z3Outcome:
    """What `--solver z3` adds to a placement: how good it is, and the conflicts."""

    status: str
    optimal: bool
    objective: str
    objective_value: int | None
    conflicts: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...]
    evicted: tuple[str, ...] = ()
    pdb_violations: int = 0


def _run_z3(
    cluster: Cluster, seed: int, *, gang: bool, objective: str, timeout: float
) -> tuple[ScheduleResult, Z3Outcome]:
    from kubeproof.sched.solver import SolverInputError, solve

    try:
        result = solve(
            cluster.nodes,
            cluster.pods,
            objective=objective,
            gang=gang,
            timeout_s=timeout,
            seed=seed,
            clock=time.monotonic,
            pdbs=cluster.pdbs,
            config=cluster.config,
        )
    except (SolverInputError, ValueError) as e:
        _fail_input(str(e))
        raise  # unreachable: _fail_input exits
    outcome = Z3Outcome(
        status=result.status,
        optimal=result.optimal,
        objective=result.objective,
        objective_value=result.objective_value,
        conflicts=tuple((c.pods, c.constraints, c.message) for c in result.conflicts),
        evicted=result.evicted,
        pdb_violations=result.pdb_violations,
    )
    placed = ScheduleResult(dict(result.placements), dict(result.reasons), preempted=result.evicted)
    return placed, outcome


def _field(result: object, name: str) -> Mapping[str, Any]:
    value = result.get(name) if isinstance(result, Mapping) else getattr(result, name, None)
    if not isinstance(value, Mapping):
        raise click.ClickException(f"the z3 solver returned no {name!r}")
    return value


def _explanation_json(e: Explanation) -> dict[str, Any]:
    return {
        "pod": e.pod,
        "node": e.node,
        "message": e.message,
        "weights": dict(e.weights),
        "nodes": [
            {
                "node": n.node,
                "feasible": n.feasible,
                "filters": dict(n.filters),
                "scores": dict(n.scores),
                "total": n.total,
                "note": n.note,
            }
            for n in e.nodes
        ],
    }


_SHORT = {
    "NodeUnschedulable": "Unsched",
    "NodeName": "Name",
    "TaintToleration": "Taint",
    "NodeAffinity": "NodeAff",
    "NodePorts": "Ports",
    "NodeResourcesFit": "Fit",
    "PodTopologySpread": "Spread",
    "InterPodAffinity": "PodAff",
    "NodeResourcesBalancedAllocation": "Balanced",
    "ImageLocality": "Image",
}


def _short(name: str) -> str:
    return _SHORT.get(name, name)


def _print_explanation(console: Console, e: Explanation) -> None:
    where = f"placed on [bold]{e.node}[/bold]" if e.node else "[red]not placed[/red]"
    console.print(f"\n[bold]{e.pod}[/bold]: {where}")
    if e.message:
        console.print(e.message, soft_wrap=True)
    plugins = [name for name, _ in (e.nodes[0].filters if e.nodes else ())]
    console.print(
        "Filter plugins, in order: "
        + ", ".join(f"{i + 1}={_short(n)}" for i, n in enumerate(plugins))
        + "  (✓ passed, ✗ rejected, · skipped for this pod)",
        soft_wrap=True,
    )
    ft = Table(title="Filter verdicts")
    ft.add_column("node")
    ft.add_column("1" + "".join(str(i + 1)[-1] for i in range(1, len(plugins))), no_wrap=True)
    ft.add_column("rejected by")
    for n in e.nodes:
        marks = []
        reasons = []
        for name, v in n.filters:
            if v == "passed":
                marks.append("[green]✓[/green]")
            elif v == "skipped":
                marks.append("·")
            else:
                marks.append("[red]✗[/red]")
                reasons.append(f"{name}: {v}")
        ft.add_row(n.node, "".join(marks), "; ".join(reasons) or n.note)
    console.print(ft)
    scored = [n for n in e.nodes if n.total is not None]
    if scored:
        st = Table(title="Scores: normalized 0..100 x weight")
        st.add_column("node")
        for name, w in e.weights:
            st.add_column(f"{_short(name)}\nx{w}", justify="right")
        st.add_column("total", justify="right")
        for n in sorted(scored, key=lambda n: (-(n.total or 0), n.node)):
            scores = dict(n.scores)
            mark = " ←" if n.node == e.node else ""
            st.add_row(
                n.node, *(str(scores.get(name, "")) for name, _ in e.weights), f"{n.total}{mark}"
            )
        console.print(st)


@click.command("schedule")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--solver",
    type=click.Choice(["greedy", "z3"]),
    default="greedy",
    show_default=True,
    help="greedy: kube-scheduler's cycle, pod by pod; z3: the batch solver.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="A KubeSchedulerConfiguration (v1) file; replaces one in FILE.",
)
@click.option(
    "--explain",
    "explain",
    multiple=True,
    metavar="POD",
    help="Show every plugin's verdict and score on every node for POD ([NAMESPACE/]NAME).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for tie-breaking.")
@click.option("--gang", is_flag=True, help="z3: place all pending pods or none.")
@click.option(
    "--objective",
    type=click.Choice(["score", "fewest-nodes", "placed", "least-preemption"]),
    default="score",
    show_default=True,
    help="z3: what to optimise once the most pods are placed; least-preemption "
    "may evict lower-priority running pods, as few as it can.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="z3: seconds to search; the best placement found so far is returned.",
)
def schedule_command(
    file: str,
    solver: str,
    config_path: str | None,
    explain: tuple[str, ...],
    as_json: bool,
    seed: int,
    gang: bool,
    objective: str,
    timeout: float,
) -> None:
    """Schedule the pods in FILE onto its nodes (kube-scheduler v1.32 semantics).

    Pods with spec.nodeName are running and count against their node.
    Exit 0 when every pod is placed, 1 when some are not, 2 on bad input.
    """
    try:
        cluster = load_cluster(_read(file))
        if config_path is not None:
            extra = load_cluster(_read(config_path))
            if extra.nodes or extra.pods:
                _fail_input(f"{config_path}: expected only a KubeSchedulerConfiguration")
            cluster = Cluster(cluster.nodes, cluster.pods, extra.config, cluster.pdbs)
    except InputError as e:
        _fail_input(str(e))
        return
    keys = [_pod_key(cluster, name) for name in explain]
    if solver == "z3":
        if keys:
            _fail_input("--explain works with --solver greedy only")
        result, outcome = _run_z3(cluster, seed, gang=gang, objective=objective, timeout=timeout)
    else:
        outcome = None
        if gang:
            _fail_input("--gang works with --solver z3 only")
        result = Scheduler(
            cluster.nodes,
            cluster.pods,
            cluster.config,
            rng=random.Random(seed),
            pdbs=cluster.pdbs,
            explain=keys,
        ).run()
    if as_json:
        out: dict[str, Any] = {
            "placements": dict(result.placements),
            "reasons": dict(result.reasons),
        }
        if keys:
            out["explanations"] = {
                k: _explanation_json(result.explanations[k])
                for k in keys
                if k in result.explanations
            }
        if outcome is not None:
            out["evicted"] = list(outcome.evicted)
            out["solver"] = {
                "status": outcome.status,
                "optimal": outcome.optimal,
                "objective": outcome.objective,
                "objective_value": outcome.objective_value,
                "conflicts": [
                    {"pods": list(p), "constraints": list(c), "message": m}
                    for p, c, m in outcome.conflicts
                ],
            }
            if outcome.objective == "least-preemption":
                out["solver"]["pdb_violations"] = outcome.pdb_violations
        click.echo(json.dumps(out, indent=2, sort_keys=True))
    else:
        console = Console(soft_wrap=False)
        table = Table(caption=f"{solver} solver, kube-scheduler {KUBE_VERSION} semantics")
        table.add_column("pod")
        table.add_column("node")
        evicted = set(outcome.evicted if outcome is not None else ())
        for key, node in result.placements.items():
            shown = node or "[red]pending[/red]"
            table.add_row(key, "[yellow]evicted[/yellow]" if key in evicted else shown)
        console.print(table)
        view = loads(cluster.nodes, cluster.pods, result.placements, evicted)
        console.print(placement_view(view))
        pending = {k: v for k, v in result.reasons.items() if k not in evicted}
        if pending:
            console.print("\n[bold]Not placed[/bold]")
            for key, why in pending.items():
                console.print(f"  {key}: {why}", soft_wrap=True)
        if evicted:
            console.print("\n[bold]Evicted[/bold]")
            for key in result.placements:
                if key in evicted:
                    console.print(f"  {key}: {result.reasons.get(key, '')}", soft_wrap=True)
        for k in keys:
            if k in result.explanations:
                _print_explanation(console, result.explanations[k])
        if outcome is not None:
            console.print(f"\nz3: {outcome.status}", end="")
            if outcome.objective_value is not None:
                proved = " (proved optimal)" if outcome.optimal else ""
                value = f"{outcome.objective_value}"
                if outcome.objective == "least-preemption":
                    value += (
                        f" eviction(s), {outcome.pdb_violations} PodDisruptionBudget violation(s)"
                    )
                console.print(f"; {outcome.objective} = {value}{proved}", end="")
            console.print()
            if outcome.conflicts:
                console.print("\n[bold]Constraints that cannot hold together[/bold]")
                for _pods, _constraints, message in outcome.conflicts:
                    console.print(f"  - {message}", soft_wrap=True)
    sys.exit(0 if result.all_placed else 1)
