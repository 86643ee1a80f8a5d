"""kubeproof.sim: the deterministic simulation harness (see docs/concepts.md).

A run is a seed plus a `SimConfig`; `run_simulation` runs one, `run_campaign`
many; `Cluster` is the action API every driver (the random scheduler, the
Hypothesis state machines, replay) goes through; traces are written and read
by `TraceWriter`/`TraceReader` and re-executed by `replay`, which also
re-executes the replicated store's (`kv`) and the API simulation's traces
(`Checkers` names each target's checkers).
"""

from .campaign import CampaignResult, run_campaign
from .cluster import NODE_EXCEPTION, Cluster, Counters, SimError
from .config import ALL_FAULTS, ConfigError, DelayKind, Fault, SimConfig, parse_faults
from .harness import RunResult, Simulation, run_simulation
from .observe import Checker, ClusterView, Event, NodeView, Violation
from .replay import Checkers, Divergence, ReplayError, ReplayResult, replay
from .swarm import swarm_config
from .trace import TraceFormatError, TraceHeader, TraceOutcome, TraceReader, TraceWriter

__all__ = [
    "ALL_FAULTS",
    "NODE_EXCEPTION",
    "CampaignResult",
    "Checker",
    "Checkers",
    "Cluster",
    "ClusterView",
    "ConfigError",
    "Counters",
    "DelayKind",
    "Divergence",
    "Event",
    "Fault",
    "NodeView",
    "ReplayError",
    "ReplayResult",
    "RunResult",
    "SimConfig",
    "SimError",
    "Simulation",
    "TraceFormatError",
    "TraceHeader",
    "TraceOutcome",
    "TraceReader",
    "TraceWriter",
    "Violation",
    "parse_faults",
    "replay",
    "run_campaign",
    "run_simulation",
    "swarm_config",
]
