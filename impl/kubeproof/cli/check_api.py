"""`kubeproof check api`: seeded simulations of API clients, every API invariant checked.

A composition root: it wires the API simulation (`kubeproof.sim.apisim`)
to the spec's checkers (`kubeproof.spec.api.api_checkers`) and to an API
server class (the real `ApiServer`, or a mutant through `api_campaign(
server_factory=...)` or the hidden ``--node-factory module:attr``).  `prepare`
is the target for `kubeproof check` (`campaign_runner` runs it).

Flags it shares with `kubeproof check`: ``--seeds A..B`` / ``--seed N``,
``--steps`` (client operations per seed; 400 unless given), ``--nodes`` (API
server instances over the one store; 2 unless given), ``--faults`` (a comma
list of compact, crash, delay, drop, dup, reorder; ``all``; ``none``),
``--save-failures DIR`` (a failing seed is run again with a trace, written
there as ``api-seed-N.jsonl``), ``--json``.  Exit 0 without violations, 1
with, 2 on bad input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

from attrs import define, field, frozen

from kubeproof.api import ApiServer
from kubeproof.sim.apisim import (
    ApiRunResult,
    ApiSimConfig,
    ApiSimConfigError,
    ServerFactory,
    parse_api_faults,
    run_api_simulation,
)
from kubeproof.sim.observe import Violation
from kubeproof.version import __version__

from .campaign_runner import (
    Campaign,
    CheckOptions,
    Counters,
    SeedRun,
    counter_rows,
    faults_text,
    load_node_factory,
    parsed,
)

DEFAULT_STEPS = 400
DEFAULT_SERVERS = 2


@frozen
class ApiFailure:
    seed: int
    violation: Violation
    trace: Path | None
    reproduced: bool


@define
class ApiCampaignResult:
    config: ApiSimConfig
    seeds: list[int] = field(factory=list)
    totals: dict[str, int] = field(factory=dict)
    failures: list[ApiFailure] = field(factory=list)
    internal_errors: int = 0

    @property
    def violations(self) -> int:
        return len(self.failures)

    def by_invariant(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.failures:
            out[f.violation.invariant] = out.get(f.violation.invariant, 0) + 1
        return dict(sorted(out.items()))


def _checkers() -> list[Any]:
    from kubeproof.spec.api import api_checkers

    return api_checkers()


def _factory_name(factory: ServerFactory) -> str:
    return f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', '?')}"


def write_trace(
    path: Path, seed: int, config: ApiSimConfig, factory: ServerFactory, run: ApiRunResult
) -> None:
    """The run as JSON Lines: header, one event a line, outcome (canonical JSON)."""

    def line(obj: Any) -> str:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str) + "\n"

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.write(
            line(
                {
                    "format": "kubeproof-trace",
                    "version": 1,
                    "kubeproof": __version__,
                    "target": "api",
                    "driver": "api",
                    "seed": seed,
                    "config": config.to_json(),
                    "server": _factory_name(factory),
                }
            )
        )
        for e in run.events:
            f.write(line(e))
        v = run.violation
        outcome: dict[str, Any] = {"outcome": "ok"}
        if v is not None:
            outcome = {
                "outcome": "violation",
                "invariant": v.invariant,
                "step": v.step,
                "message": v.message,
                "evidence": v.evidence,
            }
        f.write(line(outcome))


def api_campaign(
    seeds: Sequence[int],
    *,
    servers: int = DEFAULT_SERVERS,
    steps: int = DEFAULT_STEPS,
    faults: str = "all",
    server_factory: ServerFactory = ApiServer,
    save_failures: Path | None = None,
    on_result: Callable[[ApiRunResult], None] | None = None,
    stop_at_first: bool = False,
) -> ApiCampaignResult:
    """The Python face of `kubeproof check api` (tests run mutants through it)."""
    cfg = ApiSimConfig(servers=servers, steps=steps, faults=parse_api_faults(faults))
    result = ApiCampaignResult(cfg)
    for seed in seeds:
        run = run_api_simulation(seed, cfg, _checkers(), server_factory)
        result.seeds.append(seed)
        for k, v in run.counters.items():
            result.totals[k] = result.totals.get(k, 0) + v
        result.internal_errors += run.internal_errors
        if run.violation is not None:
            again = run_api_simulation(seed, cfg, _checkers(), server_factory, record=True)
            reproduced = (
                again.violation is not None
                and again.violation.invariant == run.violation.invariant
                and again.violation.step == run.violation.step
            )
            trace = None
            if save_failures is not None:
                trace = save_failures / f"api-seed-{seed}.jsonl"
                write_trace(trace, seed, cfg, server_factory, again)
            result.failures.append(ApiFailure(seed, run.violation, trace, reproduced))
        if on_result is not None:
            on_result(run)
        if stop_at_first and result.failures:
            break
    return result


ROWS: Counters = (
    ("requests executed", "requests"),
    ("writes succeeded", "writes_ok"),
    ("RBAC writes succeeded", "rbac_writes"),
    ("409 conflicts", "conflicts"),
    ("403 forbidden", "forbidden"),
    ("watches opened", "watches"),
    ("watch events", "watch_events"),
    ("410 expired watches", "expired"),
    ("server crashes", "crashes"),
    ("compactions", "compactions"),
    ("requests dropped / duplicated", ("dropped", "duplicated")),
)
"""The API table's counter rows."""


@frozen
class ApiCampaign(Campaign[ApiCampaignResult]):
    servers: int
    steps: int
    faults: str
    server_factory: ServerFactory
    save_failures: Path | None
    name = "api"

    def run(self, seeds: Sequence[int], on_result: Callable[[SeedRun], None]) -> ApiCampaignResult:
        return api_campaign(
            list(seeds),
            servers=self.servers,
            steps=self.steps,
            faults=self.faults,
            server_factory=self.server_factory,
            save_failures=self.save_failures,
            on_result=on_result,
        )

    def rows(self, result: ApiCampaignResult, seconds: float) -> Iterable[tuple[str, str]]:
        config = result.config
        rows = [
            ("API servers / client operations", f"{config.servers} / {config.steps}"),
            ("faults", faults_text(config.faults)),
            *counter_rows(result.totals, ROWS),
        ]
        if result.internal_errors:
            rows.append(("[red]500 internal errors[/red]", f"[red]{result.internal_errors}[/red]"))
        return rows

    def report(self, result: ApiCampaignResult, seconds: float) -> dict[str, object]:
        return {
            "servers": result.config.servers,
            "steps": result.config.steps,
            "faults": sorted(result.config.faults),
            "internal_errors": result.internal_errors,
        }

    def failed(self, result: ApiCampaignResult) -> bool:
        return bool(result.violations or result.internal_errors)


def prepare(options: CheckOptions) -> ApiCampaign:
    """`kubeproof check api`: its flags checked (exit 2 on bad input).  ``--nodes`` is
    the number of API servers (2 unless given), ``--steps`` the client operations
    per seed (400 unless given)."""
    options.refuse(
        "api",
        (
            *("pre_vote", "check_quorum", "snapshots", "conf_changes", "transfers", "reads"),
            *("lease_reads", "keep_traces", "swarm", "jobs"),
        ),
    )
    parsed(parse_api_faults, options.faults, "--faults", ApiSimConfigError)
    return ApiCampaign(
        servers=options.or_default("nodes", DEFAULT_SERVERS),
        steps=options.or_default("steps", DEFAULT_STEPS),
        faults=options.faults,
        server_factory=load_node_factory(options.node_factory, cast(ServerFactory, ApiServer)),
        save_failures=options.save_failures,
    )


class ApiTraceError(ValueError):
    """A file that is not an API trace this version can re-run."""


def replay_api(path: Path) -> tuple[ApiRunResult, bool]:
    """Re-runs an API trace by its seed and config (and server class); returns
    the new run and whether it reproduced the recorded outcome and events."""
    from kubeproof.sim.replay import ReplayError, load_factory

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0])
        outcome = json.loads(lines[-1])
    except (OSError, ValueError, IndexError) as e:
        raise ApiTraceError(f"not a readable trace: {path}: {e}") from None
    if header.get("format") != "kubeproof-trace" or header.get("target") != "api":
        raise ApiTraceError(f"{path} is not an API trace (format/target)")
    if header.get("version") != 1:
        raise ApiTraceError(f"{path}: trace version {header.get('version')!r} is not supported")
    c = header.get("config") or {}
    try:
        cfg = ApiSimConfig(
            servers=int(c["servers"]),
            clients=int(c["clients"]),
            steps=int(c["steps"]),
            faults=frozenset(str(f) for f in c["faults"]),
            drop_rate=float(c["drop_rate"]),
            dup_rate=float(c["dup_rate"]),
            crash_rate=float(c["crash_rate"]),
            compact_rate=float(c["compact_rate"]),
        )
        seed = int(header["seed"])
    except (KeyError, TypeError, ValueError) as e:
        raise ApiTraceError(f"{path}: bad header: {e}") from None
    factory: ServerFactory = ApiServer
    name = str(header.get("server", ""))
    if name and name != _factory_name(ApiServer):
        try:
            factory = cast(ServerFactory, load_factory(name))
        except ReplayError as e:
            raise ApiTraceError(str(e)) from None
    run = run_api_simulation(seed, cfg, _checkers(), factory, record=True)
    events = [json.loads(x) for x in lines[1:-1]]
    same_events = [json.loads(json.dumps(e, default=str)) for e in run.events] == events
    v = run.violation
    if v is None:
        same_outcome = outcome.get("outcome") == "ok"
    else:
        same_outcome = outcome.get("invariant") == v.invariant and outcome.get("step") == v.step
    return run, same_events and same_outcome
