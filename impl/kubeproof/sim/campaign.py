"""A campaign: one configuration over a range of seeds, failures saved as traces.

Theory of operation
-------------------
`run_campaign` runs `harness.Simulation` once per seed, each with fresh
checkers from `checkers_factory` (the composition root passes the spec's,
e.g. `kubeproof.spec.raft.raft_checkers`; the harness never imports the
spec).  Counters are summed; violations are grouped by invariant ID.
`run_seeds` is the campaign itself, for any simulation given as a function
that runs one seed (`kv.run_kv_campaign` uses it for the store).

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
import functools
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from attrs import define, field, frozen

from kubeproof.raft import RaftNode

from .config import SimConfig
from .harness import RunResult, run_simulation
from .member import NodeFactory
from .observe import Checker, Violation
from .swarm import swarm_config

CheckersFactory = Callable[[], Sequence[Checker]]


class Counted(Protocol):
    def to_json(self) -> Mapping[str, int]: ...


class SeedRun(Protocol):
    """One seed's run, as a campaign sees it (`harness.RunResult`, `kv.KVRunResult`)."""

    @property
    def seed(self) -> int: ...

    @property
    def violation(self) -> Violation | None: ...

    @property
    def counters(self) -> Counted: ...


R = TypeVar("R", bound=SeedRun)


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

    def add(self, counters: Counted) -> None:
        for name, value in counters.to_json().items():
            self.totals[name] = self.totals.get(name, 0) + value


def trace_name(target: str, seed: int) -> str:
    return f"{target}-seed-{seed}.jsonl"


def run_seeds(
    result: CampaignResult,
    seeds: Sequence[int],
    run_seed: Callable[[int, Path | None], R],
    keep_traces: Path | None = None,
    save_failures: Path | None = None,
    on_result: Callable[[R], None] | None = None,
    jobs: int = 1,
) -> CampaignResult:
    """Every seed once through ``run_seed(seed, trace_path_or_None)``, into `result`;
    see the module docstring.  With ``jobs > 1``, `run_seed` must pickle (a
    `functools.partial` of a module-level function does)."""
    target = result.target
    if keep_traces is not None:
        keep_traces.mkdir(parents=True, exist_ok=True)

    def collect(run: R) -> None:
        result.seeds.append(run.seed)
        result.add(run.counters)
        if run.violation is not None:
            result.failures.append(failure(run, run.violation))
        if on_result is not None:
            on_result(run)

    def failure(run: R, violation: Violation) -> SeedFailure:
        name = trace_name(target, run.seed)
        if keep_traces is not None:
            path = keep_traces / name
            if save_failures is not None:
                save_failures.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, save_failures / name)
                path = save_failures / name
            return SeedFailure(run.seed, violation, path, True)
        if save_failures is None:
            return SeedFailure(run.seed, violation, None, False)
        save_failures.mkdir(parents=True, exist_ok=True)
        again = run_seed(run.seed, save_failures / name).violation
        same = again is not None and (again.invariant, again.step) == (
            violation.invariant,
            violation.step,
        )
        return SeedFailure(run.seed, violation, save_failures / name, same)

    def kept(seed: int) -> Path | None:
        return keep_traces / trace_name(target, seed) if keep_traces is not None else None

    if jobs <= 1 or len(seeds) <= 1:
        for seed in seeds:
            collect(run_seed(seed, kept(seed)))
        return result
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_seed, seed, kept(seed)) for seed in seeds]
        for fut in futures:  # in seed order, whatever order they finish in
            collect(fut.result())
    return result


def _raft_seed(
    config: SimConfig,
    checkers_factory: CheckersFactory,
    node_factory: NodeFactory,
    swarm: bool,
    seed: int,
    trace: Path | None,
) -> RunResult:
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
    one = functools.partial(_raft_seed, config, checkers_factory, node_factory, swarm)
    result = CampaignResult(target=target, config=config, swarm=swarm)
    return run_seeds(result, seeds, one, keep_traces, save_failures, on_result, jobs)
