"""The drawn placement: what each node holds, and how the bars say it."""

from __future__ import annotations

import io

from rich.console import Console

from kubeproof.cli import placement_view as pv
from tests.sched_helpers import GI, node, pod


def render(loads: list[pv.NodeLoad]) -> str:
    out = io.StringIO()
    Console(file=out, width=140, color_system=None).print(pv.placement_view(loads))
    return out.getvalue()


def test_each_node_gets_its_running_placed_and_evicted_pods() -> None:
    nodes = [node("a", cpu=2000, mem=4 * GI), node("b", cpu=2000, mem=4 * GI)]
    pods = [
        pod("old", 1000, GI, node_name="a"),
        pod("gone", 500, node_name="b"),
        pod("new", 1000, GI),
        pod("nowhere", 9000),
    ]
    placements = {
        "default/old": "a",
        "default/gone": None,
        "default/new": "a",
        "default/nowhere": None,
    }
    a, b = pv.loads(nodes, pods, placements, evicted={"default/gone"})
    assert [p.name for p in a.running] == ["old"] and [p.name for p in a.placed] == ["new"]
    assert not b.running and not b.placed and [p.name for p in b.evicted] == ["gone"]
    text = render([a, b])
    # a: half its cpu held before, half added: 8 cells of each, nothing free.
    assert "▒" * 8 + "█" * 8 + " 2/2" in text
    assert "2Gi/4Gi" in text and "old new" in text
    assert "░" * 16 + " 0/2" in text  # b: the evicted pod's share is free again


def test_an_overcommitted_node_says_so_and_large_clusters_are_cut() -> None:
    nodes = [node(f"n{i}", cpu=1000) for i in range(pv.MAX_NODES + 5)]
    pods = [pod("big", 1500, node_name="n0")]
    text = render(pv.loads(nodes, pods, {"default/big": "n0"}))
    assert "1500m/1 over" in text
    assert "5 quieter nodes not shown" in text
