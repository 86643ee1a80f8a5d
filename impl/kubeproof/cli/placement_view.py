"""A placement, drawn: each node's cpu and memory as bars, with the pods on it.

The table ``kubeproof schedule`` prints says where each pod went; this view says
what that does to the nodes.  Per node, a bar per resource shows what pods
already running there hold (``▒``), what the placement adds (``█``) and what
stays free (``░``), against the node's allocatable, followed by its pods:
running ones dim, newly placed ones green, evicted ones struck through.  Large
clusters are cut after `MAX_NODES` nodes (the busiest first), saying how many
were left out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from attrs import frozen
from rich.table import Table
from rich.text import Text

from kubeproof.sched import Node, Pod

__all__ = ["MAX_NODES", "NodeLoad", "loads", "placement_view"]

MAX_NODES = 40
BAR = 16


@frozen
class NodeLoad:
    """What sits on one node after a placement."""

    node: Node
    running: tuple[Pod, ...]
    placed: tuple[Pod, ...]
    evicted: tuple[Pod, ...]

    def held(self, resource: str, pods: Sequence[Pod]) -> int:
        return sum(p.requests().get(resource) for p in pods)


def loads(
    nodes: Sequence[Node],
    pods: Sequence[Pod],
    placements: Mapping[str, str | None],
    evicted: Collection[str] = (),
) -> list[NodeLoad]:
    """Each node's running, newly placed and evicted pods, in input order."""
    running: dict[str, list[Pod]] = {n.name: [] for n in nodes}
    placed: dict[str, list[Pod]] = {n.name: [] for n in nodes}
    gone: dict[str, list[Pod]] = {n.name: [] for n in nodes}
    for pod in pods:
        if pod.node_name:
            if pod.node_name in running:
                (gone if pod.key in evicted else running)[pod.node_name].append(pod)
            continue
        target = placements.get(pod.key)
        if target is not None and target in placed:
            placed[target].append(pod)
    return [
        NodeLoad(n, tuple(running[n.name]), tuple(placed[n.name]), tuple(gone[n.name]))
        for n in nodes
    ]


def _bar(before: int, added: int, total: int) -> Text:
    if total <= 0:
        return Text("-" * BAR, style="dim")
    # Round so that a small non-zero amount still shows one cell.
    b = min(BAR, -(-before * BAR // total)) if before else 0
    a = min(BAR - b, -(-added * BAR // total)) if added else 0
    bar = Text()
    bar.append("▒" * b, style="cyan")
    bar.append("█" * a, style="green")
    bar.append("░" * (BAR - b - a), style="dim")
    return bar


def _cpu(milli: int) -> str:
    return f"{milli // 1000}" if milli % 1000 == 0 else f"{milli}m"


def _mem(n: int) -> str:
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if (n >= size and n % size == 0) or n >= 10 * size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def _cell(load: NodeLoad, resource: str) -> Text:
    total = load.node.allocatable.get(resource)
    before = load.held(resource, load.running)
    added = load.held(resource, load.placed)
    show = _cpu if resource == "cpu" else _mem
    text = _bar(before, added, total)
    text.append(f" {show(before + added)}/{show(total)}")
    if before + added > total:
        text.append(" over", style="bold red")
    return text


def _pods(load: NodeLoad) -> Text:
    text = Text()
    for style, group in (("dim", load.running), ("green", load.placed), ("strike", load.evicted)):
        for p in group:
            if text:
                text.append(" ")
            text.append(p.name, style=style)
    return text


def placement_view(all_loads: Sequence[NodeLoad]) -> Table:
    """The drawing, as a rich Table (print it with a Console)."""
    busiest = sorted(
        range(len(all_loads)),
        key=lambda i: -(len(all_loads[i].running) + len(all_loads[i].placed)),
    )
    shown = sorted(busiest[:MAX_NODES])
    caption = "▒ running  █ placed  ░ free"
    if len(shown) < len(all_loads):
        caption += f"; {len(all_loads) - len(shown)} quieter nodes not shown"
    table = Table(title="Nodes after the placement", caption=caption)
    table.add_column("node")
    table.add_column("cpu")
    table.add_column("memory")
    table.add_column("pods (running, placed, evicted)")
    for i in shown:
        load = all_loads[i]
        table.add_row(load.node.name, _cell(load, "cpu"), _cell(load, "memory"), _pods(load))
    return table
