"""The model checker's figures, for people (rows) and for machines (JSON).

Theory of operation
-------------------
An `explorer.McResult` holds the counts; this module only presents them:
states (a fingerprint with the budgets spent reaching it: the same state
reached again having spent less of a budget is a new one; `fingerprints`
counts the distinct states without that), transitions (actions
applied, including those into known states, out of the bounds, or
violating), pruned successors (by the bound they broke), the depth (BFS
levels) with the states first reached at each, the wall time and the two
rates, whether the bounds were exhausted, and the violation with its
shortest counterexample.  Nothing here runs anything.
"""

from __future__ import annotations

from typing import Any

from .explorer import McResult


def report_json(result: McResult, *, trace: str | None = None) -> dict[str, Any]:
    v = result.violation
    return {
        "node": result.node,
        "bounds": result.config.bounds_json(),
        "states": result.states,
        "fingerprints": result.fingerprints,
        "transitions": result.transitions,
        "pruned": result.pruned,
        "pruned_by": dict(sorted(result.pruned_by.items())),
        "depth": result.depth,
        "levels": list(result.levels),
        "elapsed_s": round(result.elapsed, 3),
        "states_per_s": round(result.states_per_second, 1),
        "transitions_per_s": round(result.transitions_per_second, 1),
        "complete": result.complete,
        "violation": None
        if v is None
        else {"invariant": v.invariant, "message": v.message, "step": v.step},
        "counterexample": [a.to_json() for a in result.counterexample],
        "trace": trace,
    }


def _bound(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def report_rows(result: McResult) -> list[tuple[str, str]]:
    """(label, value) rows for a summary table."""
    c = result.config
    rows = [
        ("node", result.node),
        (
            "bounds",
            f"nodes {c.nodes}, term <= {c.max_term}, index <= {c.max_index}, "
            f"in flight <= {c.max_inflight}",
        ),
        (
            "budgets",
            f"crashes {c.max_crashes}, proposals {c.max_proposals}, drops "
            f"{_bound(c.max_drops)}, duplicates {c.max_duplicates}, heartbeats "
            f"{_bound(c.max_heartbeats)}",
        ),
        (
            "reductions",
            f"ready {c.ready}, symmetry {'on' if c.symmetry else 'off'}, proposals at "
            f"{c.propose_at}",
        ),
        ("states", f"{result.states:,}"),
        ("distinct fingerprints", f"{result.fingerprints:,}"),
        ("transitions", f"{result.transitions:,}"),
        (
            "pruned (out of bounds)",
            f"{result.pruned}"
            + (
                " (" + ", ".join(f"{k} {n}" for k, n in sorted(result.pruned_by.items())) + ")"
                if result.pruned_by
                else ""
            ),
        ),
        ("depth (BFS levels)", str(result.depth)),
        ("time", f"{result.elapsed:.2f} s"),
        ("states/s", f"{result.states_per_second:,.0f}"),
        ("transitions/s", f"{result.transitions_per_second:,.0f}"),
        ("bounds exhausted", "yes" if result.complete else "no"),
    ]
    return rows
