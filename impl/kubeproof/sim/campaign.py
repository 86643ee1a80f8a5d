"""A campaign: one configuration over a range of seeds, failures saved as traces.

Theory of operation
-------------------
`run_campaign` runs `harness.Simulation` once per seed, each with fresh
checkers from `checkers_factory` (the composition root passes the spec's,
e.g. `kubeproof.spec.raft.raft_checkers`; the harness never imports the
spec).  Counters are summed; violations are grouped by invariant ID.

Traces: with `keep_traces`, every run streams its trace to
`<dir>/<target>-seed-<seed>.jsonl`.  Without it, runs are not traced at all
(the fast path) and a failing seed is simply run again with a trace, which
costs one extra run per failure and doubles as a determinism check: the
re-run must hit the same violation at the same step (`reproduced`).
Failing traces go to `save_failures` under the same name.

With `swarm`, each seed runs `swarm.swarm_config(config, seed)` instead of
`config` (its own draw of delays, rates, message sizes, fault subset).

With `jobs > 1` seeds run in worker processes (the factories must then be
importable module-level callables); results are reported in seed order
whatever the completion order, so output does not depend on `jobs`.
"""

from __future__ import annotations

import concurrent.futures
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from attrs import define, field, frozen

from kubeproof.raft import RaftNode

from .cluster import Counters
from .config import SimConfig
from .harness import RunResult, run_simulation
from .member import NodeFactory
from .observe import Checker, Violation
from .swarm import swarm_config

CheckersFactory = Callable[[], Sequence[Checker]]


@frozen
class SeedFailure:
    seed: int
    violation: Violation
    trace: Path | None
    reproduced: bool
    """The traced re-run hit the same violation at the same step (always true if kept)."""


@define
class CampaignResult:
    target: str
    config: SimConfig
    swarm: bool = False
    seeds: list[int] = field(factory=list)
    totals: dict[str, int] = field(factory=dict)
    failures: list[SeedFailure] = field(factory=list)

    @property
    def violations(self) -> int:
        return len(self.failures)

    def by_invariant(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.failures:
            out[f.violation.invariant] = out.get(f.violation.invariant, 0) + 1
        return dict(sorted(out.items()))

    def add(self, counters: Counters) -> None:
        for name, value in counters.to_json().items():
            self.totals[name] = self.totals.get(name, 0) + value


def trace_name(target: str, seed: int) -> str:
    return f"{target}-seed-{seed}.jsonl"


def _one(
    config: SimConfig,
    seed: int,
    checkers_factory: CheckersFactory,
    node_factory: NodeFactory,
    keep: Path | None,
    target: str,
    swarm: bool,
) -> RunResult:
    trace = keep / trace_name(target, seed) if keep is not None else None
    return run_simulation(
        swarm_config(config, seed) if swarm else config,
        seed,
        checkers=checkers_factory(),
        node_factory=node_factory,
        trace=trace,
    )


def run_campaign(
    config: SimConfig,
    seeds: Sequence[int],
    *,
    checkers_factory: CheckersFactory,
    node_factory: NodeFactory = RaftNode,
    keep_traces: Path | None = None,
    save_failures: Path | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    jobs: int = 1,
    target: str = "raft",
    swarm: bool = False,
) -> CampaignResult:
    """Run every seed; see the module docstring."""
    result = CampaignResult(target=target, config=config, swarm=swarm)
    if keep_traces is not None:
        keep_traces.mkdir(parents=True, exist_ok=True)

    def collect(run: RunResult) -> None:
        result.seeds.append(run.seed)
        result.add(run.counters)
        if run.violation is not None:
            result.failures.append(_save_failure(run, keep_traces, save_failures))
        if on_result is not None:
            on_result(run)

    def _save_failure(run: RunResult, keep: Path | None, save: Path | None) -> SeedFailure:
        assert run.violation is not None
        name = trace_name(target, run.seed)
        if keep is not None:
            path: Path | None = keep / name
            if save is not None and path is not None:
                save.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, save / name)
                path = save / name
            return SeedFailure(run.seed, run.violation, path, True)
        if save is None:
            return SeedFailure(run.seed, run.violation, None, False)
        save.mkdir(parents=True, exist_ok=True)
        again = run_simulation(
            run.config,
            run.seed,
            checkers=checkers_factory(),
            node_factory=node_factory,
            trace=save / name,
        )
        same = again.violation is not None and (
            again.violation.invariant,
            again.violation.step,
        ) == (run.violation.invariant, run.violation.step)
        return SeedFailure(run.seed, run.violation, save / name, same)

    if jobs <= 1 or len(seeds) <= 1:
        for seed in seeds:
            collect(_one(config, seed, checkers_factory, node_factory, keep_traces, target, swarm))
        return result
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(
                _one, config, seed, checkers_factory, node_factory, keep_traces, target, swarm
            )
            for seed in seeds
        ]
        for fut in futures:  # in seed order, whatever order they finish in
            collect(fut.result())
    return result
