"""The table of proofs `kubeproof prove` runs, and the deliberately false variant of each.

Theory of operation
-------------------
`PROOFS` maps a stable name to a function that runs the proof at its default
bounds and returns a `Proof`.  `FALSE_VARIANTS` maps the same names to a
nearby claim that is false (quorums of half the members, the median off by
one, a membership change with no joint phase ...): Z3 must refute each with
a counterexample.  They show the encodings have teeth: an encoding that
proved everything would prove these too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from .commit import (
    COMMIT_NAME,
    JOINT_COMMIT_NAME,
    commit_index_is_majority_index,
    joint_commit_index,
    joint_commit_max_index,
    upper_median_is_majority_index,
)
from .majority import (
    ALL_SIZES_NAME,
    MAJORITY_NAME,
    half_quorums_intersect,
    half_quorums_intersect_all_sizes,
    majority_quorums_intersect,
    majority_quorums_intersect_all_sizes,
)
from .reconfig import (
    JOINT_NAME,
    SINGLE_NAME,
    direct_change_quorums_intersect,
    double_change_quorums_intersect,
    joint_quorums_intersect,
    single_change_quorums_intersect,
)
from .result import Proof

ProofFunction = Callable[[], Proof]

PROOFS: Mapping[str, ProofFunction] = MappingProxyType(
    {
        MAJORITY_NAME: majority_quorums_intersect,
        ALL_SIZES_NAME: majority_quorums_intersect_all_sizes,
        JOINT_NAME: joint_quorums_intersect,
        SINGLE_NAME: single_change_quorums_intersect,
        COMMIT_NAME: commit_index_is_majority_index,
        JOINT_COMMIT_NAME: joint_commit_index,
    }
)

FALSE_VARIANTS: Mapping[str, ProofFunction] = MappingProxyType(
    {
        MAJORITY_NAME: half_quorums_intersect,
        ALL_SIZES_NAME: half_quorums_intersect_all_sizes,
        JOINT_NAME: direct_change_quorums_intersect,
        SINGLE_NAME: double_change_quorums_intersect,
        COMMIT_NAME: upper_median_is_majority_index,
        JOINT_COMMIT_NAME: joint_commit_max_index,
    }
)
