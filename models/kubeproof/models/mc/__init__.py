"""kubeproof.models.mc: a bounded model checker for the Raft node, over the harness.

    from kubeproof.models.mc import McConfig, explore, write_counterexample
    from kubeproof.spec.raft import raft_checkers
    result = explore(McConfig(max_term=2), checkers=raft_checkers)
    result.states, result.transitions, result.violation, result.counterexample

See docs/model-checking.md for the bounds, the reductions and why they are sound.
"""

from .actions import Action, apply, enabled, out_of_bounds
from .config import McConfig, McConfigError
from .explorer import (
    CheckersFactory,
    Explorer,
    McError,
    McProgress,
    McResult,
    Reexecution,
    explore,
    path_to,
    write_counterexample,
)
from .fork import fork
from .ghost import Ghost
from .report import report_json, report_rows
from .state import StateKeyer

__all__ = [
    "Action",
    "CheckersFactory",
    "Explorer",
    "Ghost",
    "McConfig",
    "McConfigError",
    "McError",
    "McProgress",
    "McResult",
    "Reexecution",
    "StateKeyer",
    "apply",
    "enabled",
    "explore",
    "fork",
    "out_of_bounds",
    "path_to",
    "report_json",
    "report_rows",
    "write_counterexample",
]
