"""Z3 proofs of the quorum and commit rules Raft's safety rests on.

Each proof is a function returning a `Proof`; `PROOFS` is the table that
`kubeproof prove` runs, and `FALSE_VARIANTS` holds a deliberately false
neighbour of each claim, which Z3 must refute.  See docs/proofs.md.
"""

from .registry import FALSE_VARIANTS, PROOFS, ProofFunction
from .result import Proof, Verdict

__all__ = ["FALSE_VARIANTS", "PROOFS", "Proof", "ProofFunction", "Verdict"]
