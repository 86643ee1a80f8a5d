"""kube-scheduler's hard constraints for a batch of pods, as one Z3 formula.

Theory of operation
-------------------
A placement of the batch is *valid* when the pods can be bound one after the
other, in some order, each passing every Filter plugin against the running
pods and the batch pods bound before it.  That is kube-scheduler's own
semantics (each cycle filters against the cluster as it is then), and the
spec's checker (`kubeproof.spec.sched`) checks exactly that.  Most filters
do not care about the order: resources, host ports and anti-affinity only get
worse as pods are added, so a final state that satisfies them satisfies every
prefix.  Two do care: required pod affinity (a pod needs a matching pod bound
*before* it, or to be the first of its kind) and topology spread (the skew is
measured when the pod is bound).  For those the formula carries a binding
order.

Variables (only for candidate nodes, see `solver_problem`):

=================  ========================================================
``a[p,n]``         pod p is bound to node n (at most one n per p)
``placed[p]``      ``Or(a[p,*])``
``ord[p]``         p's position in the binding order, an Int in [0, B); only
                   for pods in an affinity or spread relation.  p is bound
                   before q when (ord[p], p) < (ord[q], q): ties are broken
                   by index, so no distinctness constraint is needed
``evict[r]``       evictable running pod r is evicted (preemption problems
                   only; see `solver_problem`).  Victims go before the
                   first binding, so a kept pod counts at every binding and
                   an evicted one at none
=================  ========================================================

With preemption every contribution of an evictable running pod r is gated
by "r is kept" (``Not(evict[r])``): its requests and its slot in the
capacity sums, its host ports, its required anti-affinity against batch pods
and the batch pods' anti-affinity against it, its part in a batch pod's
required affinity (as a partner, and in "no matching pod exists" of the
first-pod exception), and its count in every spread domain.  A node's
capacity row for resource r holds only when a batch pod asking for r (for
``pods``: any batch pod) is on the node, as NodeResourcesFit checks only the
incoming pod's resources: kept pods alone may leave a node overcommitted.

Constraint families (each named, so that an unsatisfiable core can be read
back as plugins and pods; see `solver_explain`):

=======================  ====================================================
family                   encodes
=======================  ====================================================
("static", p, plugin)    p is not on a node that `plugin` rejects whatever the
                         batch does (explain mode only; otherwise such nodes
                         have no variable at all)
("capacity", n, r)       sum of the batch's requests of r on n (plus the kept
                         evictable pods') <= what the fixed running pods left
                         free (pseudo-Boolean); r = "pods" is the pod count.
                         Only pods requesting r > 0 take part, so a node the
                         running pods already overcommit takes no pod that
                         asks for more, as NodeResourcesFit
("ports", n)             no two batch pods with conflicting host ports on n;
                         an evictable pod whose port conflicts with a batch
                         pod's on n is evicted if that pod goes there
("anti", p, i)           p's i-th required anti-affinity term: no pod it
                         matches in p's domain; it covers both directions,
                         since the other pod's check is "existing pods'
                         anti-affinity" when it comes second.  An evictable
                         pod it matches there is evicted
("affinity", p)          every term of p has, in p's domain, a pod matching
                         all of p's terms bound before p; or no such pod is
                         bound before p anywhere on a node carrying the
                         terms' keys and p matches its own terms (the
                         first-pod exception)
("spread", p, i)         at p's binding, count(p's domain) + selfMatch -
                         min over eligible domains <= maxSkew, counting
                         running pods and batch pods bound before p on
                         eligible nodes; the minimum is 0 when there are
                         fewer eligible domains than minDomains
("running-anti", r, i)   evictable running pod r's i-th required anti-affinity
                         term: no batch pod it matches in r's domain unless r
                         is evicted (fixed pods' terms are static)
("victim", r)            r is evicted only if a batch pod that may preempt
                         (preemptionPolicy not Never) and has a strictly
                         higher priority than r is bound to r's node:
                         DefaultPreemption only removes pods from the node
                         it nominates, and only of lower priority
("place", p)             p is placed (explain mode and gang checks)
=======================  ====================================================

Identical pods are interchangeable, so (outside explain mode) the formula
asks that the later of two identical pods is placed only if the earlier one
is, and on a node of no lower index; of two interchangeable nodes, the
earlier one hosts the lowest-indexed pod (double-lex); of two identical
evictable pods on one node, the later one is evicted only if the earlier
one is.  This removes the factorial symmetries that otherwise make proofs of
"no better placement exists" hopeless.

`pdb_excess` adds, on request, literals whose count is at least the PDB
violations (`Problem.pdb_violations`) and can always be made equal to it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from math import gcd
from typing import Any

import attrs
import z3

from .model import PODS
from .solver_match import Term, pods_ports_conflict
from .solver_problem import Problem

__all__ = ["Encoding", "Family"]

Family = tuple[Hashable, ...]


class Encoding:
    """The variables and constraints for one problem, in one Z3 context."""

    def __init__(
        self,
        problem: Problem,
        ctx: z3.Context,
        *,
        track: bool = False,
        symmetry: bool = True,
    ) -> None:
        self.problem = problem
        self.ctx = ctx
        self.track = track
        self.constraints: list[Any] = []
        self.lits: dict[Family, Any] = {}
        self.true = z3.BoolVal(True, ctx)
        self.false = z3.BoolVal(False, ctx)
        nb = len(problem.batch)
        self.cands: list[tuple[int, ...]] = [
            tuple(range(len(problem.nodes))) if track else problem.candidates[pi]
            for pi in range(nb)
        ]
        self.a: dict[tuple[int, int], Any] = {
            (pi, ni): z3.Bool(f"a_{pi}_{ni}", ctx) for pi in range(nb) for ni in self.cands[pi]
        }
        self.placed: list[Any] = []
        for pi in range(nb):
            lits = [self.a[pi, ni] for ni in self.cands[pi]]
            if not lits:
                self.placed.append(self.false)
                continue
            v = z3.Bool(f"placed_{pi}", ctx)
            self.constraints.append(v == z3.Or(*lits))
            if len(lits) > 1:
                self.constraints.append(z3.AtMost(*lits, 1))
            self.placed.append(v)
        self.evict: dict[int, Any] = {qi: z3.Bool(f"evict_{qi}", ctx) for qi in problem.evictable}
        self.ord: dict[int, Any] = {}
        self._dom_cache: dict[tuple[int, str, str, frozenset[int] | None], Any] = {}
        if track:
            self._static()
        self._victims()
        self._capacity()
        self._ports()
        self._anti_affinity()
        self._running_anti()
        self._affinity()
        self._spread()
        if symmetry and not track:
            self._symmetry()

    # ----------------------------------------------------------------- plumbing

    def lit(self, fam: Family) -> Any:
        """The assumption literal that switches a family on (explain mode)."""
        if fam not in self.lits:
            self.lits[fam] = z3.Bool("track:" + ":".join(map(str, fam)), self.ctx)
        return self.lits[fam]

    def add(self, fam: Family, c: Any) -> None:
        if z3.is_true(c):
            return
        self.constraints.append(z3.Implies(self.lit(fam), c) if self.track else c)

    def place_lit(self, pi: int) -> Any:
        """Tracked "pod pi is placed"."""
        lit = self.lit(("place", pi))
        self.constraints.append(z3.Implies(lit, self.placed[pi]))
        return lit

    def _or(self, xs: Iterable[Any]) -> Any:
        xs = [x for x in xs if not z3.is_false(x)]
        if not xs:
            return self.false
        return xs[0] if len(xs) == 1 else z3.Or(*xs)

    def _and(self, xs: Iterable[Any]) -> Any:
        xs = [x for x in xs if not z3.is_true(x)]
        if not xs:
            return self.true
        return xs[0] if len(xs) == 1 else z3.And(*xs)

    def dom(self, pi: int, key: str, value: str, within: frozenset[int] | None = None) -> Any:
        """Pod pi is on a node whose label `key` is `value` (and, if given, in `within`)."""
        ck = (pi, key, value, within)
        if ck not in self._dom_cache:
            nodes = self.problem.nodes
            self._dom_cache[ck] = self._or(
                self.a[pi, ni]
                for ni in self.cands[pi]
                if nodes[ni].labels.get(key) == value and (within is None or ni in within)
            )
        return self._dom_cache[ck]

    def order(self, pi: int) -> Any:
        if pi not in self.ord:
            v = z3.Int(f"ord_{pi}", self.ctx)
            self.ord[pi] = v
            self.constraints.append(v >= 0)
            self.constraints.append(v <= max(len(self.problem.batch) - 1, 0))
        return self.ord[pi]

    def kept(self, qi: int) -> Any:
        """Running pod qi is still there when the batch binds."""
        return z3.Not(self.evict[qi]) if qi in self.evict else self.true

    def before(self, qi: int, pi: int) -> Any:
        """Batch pod qi is bound before batch pod pi."""
        oq, op = self.order(qi), self.order(pi)
        return oq <= op if qi < pi else oq < op

    # ----------------------------------------------------------------- families

    def _static(self) -> None:
        for pi, row in enumerate(self.problem.static):
            for ni, failures in enumerate(row):
                # NodeResourcesFit needs no family of its own: the capacity
                # constraints already exclude a pod that does not fit alone.
                for plugin in dict.fromkeys(f for f, _ in failures if f != "NodeResourcesFit"):
                    self.add(("static", pi, plugin), z3.Not(self.a[pi, ni]))

    def on_node(self, ni: int) -> list[int]:
        return [pi for pi in range(len(self.problem.batch)) if (pi, ni) in self.a]

    def _victims(self) -> None:
        prob = self.problem
        for qi in prob.evictable:
            q = prob.running[qi]
            ni = prob.running_node[qi]
            by = [
                self.a[pi, ni]
                for pi in prob.preemptors
                if prob.batch[pi].priority > q.priority and (pi, ni) in self.a
            ]
            self.add(("victim", qi), z3.Implies(self.evict[qi], self._or(by)))

    def _capacity(self) -> None:
        prob = self.problem
        for ni in range(len(prob.nodes)):
            pods = self.on_node(ni)
            if not pods:
                continue
            soft = prob.evictable_on[ni]
            self._capped(
                ("capacity", ni, PODS),
                [(self.a[pi, ni], 1) for pi in pods],
                [(self.kept(qi), 1) for qi in soft],
                prob.nodes[ni].allocatable.pods - len(prob.fixed_on[ni]),
            )
            names = dict.fromkeys(r for pi in pods for r in prob.requests[pi])
            for r in names:
                self._capped(
                    ("capacity", ni, r),
                    [
                        (self.a[pi, ni], prob.requests[pi][r])
                        for pi in pods
                        if r in prob.requests[pi]
                    ],
                    [
                        (self.kept(qi), w)
                        for qi in soft
                        if (w := prob.running_requests[qi].get(r, 0)) > 0
                    ],
                    prob.free(ni, r),
                )

    def _capped(
        self,
        fam: Family,
        terms: list[tuple[Any, int]],
        soft: list[tuple[Any, int]],
        free: int,
    ) -> None:
        """If a pod of `terms` is on the node: sum of `terms` + kept `soft` <= free.

        Without `soft` the guard is implicit (the sum is 0 without such a pod).
        With it, a Boolean ``busy`` (implied by every literal of `terms`)
        switches the row off: ``terms + soft + over * busy <= cap + over``,
        where ``over`` is how far the evictable pods alone exceed the room.
        """
        cap = max(0, free)
        total = sum(w for _, w in terms) + sum(w for _, w in soft)
        if total <= cap:
            return
        over = max(0, sum(w for _, w in soft) - cap)
        rows = list(terms) + list(soft)
        if over:
            busy = z3.Bool("busy:" + ":".join(map(str, fam[1:])), self.ctx)
            self.constraints += [z3.Implies(lit, busy) for lit, _ in terms]
            rows.append((busy, over))
        g = 0
        for _, w in rows:
            g = gcd(g, w)
        self.add(fam, z3.PbLe([(lit, w // g) for lit, w in rows], (cap + over) // g))

    def _ports(self) -> None:
        prob = self.problem
        self._running_ports()
        with_ports = [pi for pi, p in enumerate(prob.batch) if p.host_ports()]
        if len(with_ports) < 2:
            return
        pairs = [
            (pi, qi)
            for i, pi in enumerate(with_ports)
            for qi in with_ports[i + 1 :]
            if pods_ports_conflict(prob.batch[pi], prob.batch[qi])
        ]
        for ni in range(len(prob.nodes)):
            for pi, qi in pairs:
                if (pi, ni) in self.a and (qi, ni) in self.a:
                    self.add(("ports", ni), z3.Not(z3.And(self.a[pi, ni], self.a[qi, ni])))

    def _running_ports(self) -> None:
        prob = self.problem
        for pi, p in enumerate(prob.batch):
            if not p.host_ports():
                continue
            for qi in prob.evictable:
                ni = prob.running_node[qi]
                if (pi, ni) in self.a and pods_ports_conflict(p, prob.running[qi]):
                    self.add(("ports", ni), z3.Implies(self.a[pi, ni], self.evict[qi]))

    def _anti_affinity(self) -> None:
        prob = self.problem
        for pi, terms in enumerate(prob.anti):
            for ti, t in enumerate(terms):
                others = [qi for qi, q in enumerate(prob.batch) if qi != pi and t.matches(q)]
                if not others:
                    continue
                values = sorted(
                    {
                        v
                        for ni in self.cands[pi]
                        if (v := prob.nodes[ni].labels.get(t.topology_key)) is not None
                    }
                )
                for v in values:
                    here = self.dom(pi, t.topology_key, v)
                    there = self._or(self.dom(qi, t.topology_key, v) for qi in others)
                    if not z3.is_false(there):
                        self.add(("anti", pi, ti), z3.Implies(here, z3.Not(there)))
        # Evictable running pods p's terms match: p in their domain evicts them.
        for pi, terms in enumerate(prob.anti):
            for ti, t in enumerate(terms):
                for qi in prob.evictable:
                    v = self._domain_of(qi, t)
                    if v is not None and t.matches(prob.running[qi]):
                        here = self.dom(pi, t.topology_key, v)
                        if not z3.is_false(here):
                            self.add(("anti", pi, ti), z3.Implies(here, self.evict[qi]))

    def _domain_of(self, qi: int, t: Term) -> str | None:
        prob = self.problem
        return prob.nodes[prob.running_node[qi]].labels.get(t.topology_key)

    def _running_anti(self) -> None:
        prob = self.problem
        for qi in prob.evictable:
            for ti, t in enumerate(prob.running_anti[qi]):
                v = self._domain_of(qi, t)
                if v is None:
                    continue
                for pi, p in enumerate(prob.batch):
                    if t.matches(p):
                        here = self.dom(pi, t.topology_key, v)
                        if not z3.is_false(here):
                            self.add(("running-anti", qi, ti), z3.Implies(here, self.evict[qi]))

    def _affinity(self) -> None:
        prob = self.problem
        for pi, terms in enumerate(prob.affinity):
            if not terms:
                continue
            pod = prob.batch[pi]
            keys = [t.topology_key for t in terms]
            matching = [qi for qi, q in enumerate(prob.running) if all(t.matches(q) for t in terms)]
            run_match = [qi for qi in matching if prob.fixed[qi]]
            soft_match = [qi for qi in matching if not prob.fixed[qi]]
            run_values = [
                {
                    v
                    for qi in run_match
                    if (v := prob.nodes[prob.running_node[qi]].labels.get(t.topology_key))
                    is not None
                }
                for t in terms
            ]
            counted_running = any(
                any(k in prob.nodes[prob.running_node[qi]].labels for k in keys) for qi in run_match
            )
            batch_match = [
                qi
                for qi, q in enumerate(prob.batch)
                if qi != pi and all(t.matches(q) for t in terms)
            ]
            exception: Any = self.false
            if not counted_running and all(t.matches(pod) for t in terms):
                keyed = frozenset(
                    ni for ni, n in enumerate(prob.nodes) if any(k in n.labels for k in keys)
                )
                exception = self._and(
                    [self.evict[qi] for qi in soft_match if prob.running_node[qi] in keyed]
                    + [
                        z3.Not(z3.And(self.before(qi, pi), self._within(qi, keyed)))
                        for qi in batch_match
                        if not z3.is_false(self._within(qi, keyed))
                    ]
                )
            groups: dict[tuple[str, ...], list[int]] = {}
            for ni in self.cands[pi]:
                labels = prob.nodes[ni].labels
                if all(k in labels for k in keys):
                    groups.setdefault(tuple(labels[k] for k in keys), []).append(ni)
            for values, nis in groups.items():
                normal = self._and(
                    self.true
                    if v in run_values[i]
                    else self._or(
                        [self.kept(qi) for qi in soft_match if self._domain_of(qi, t) == v]
                        + [
                            z3.And(self.before(qi, pi), self.dom(qi, t.topology_key, v))
                            for qi in batch_match
                            if not z3.is_false(self.dom(qi, t.topology_key, v))
                        ]
                    )
                    for i, (t, v) in enumerate(zip(terms, values, strict=True))
                )
                here = self._or(self.a[pi, ni] for ni in nis)
                self.add(("affinity", pi), z3.Implies(here, self._or([normal, exception])))

    def _within(self, qi: int, nodes: frozenset[int]) -> Any:
        return self._or(self.a[qi, ni] for ni in self.cands[qi] if ni in nodes)

    def _spread(self) -> None:
        prob = self.problem
        ctx = self.ctx
        for pi, constraints in enumerate(prob.spread):
            pod = prob.batch[pi]
            keys = prob.spread_keys(pi)
            for ci, c in enumerate(constraints):
                key = c.topology_key
                eligible = [ni for ni, n in enumerate(prob.nodes) if c.eligible(pod, n, keys)]
                values = sorted({prob.nodes[ni].labels[key] for ni in eligible})
                by_value = {
                    v: frozenset(ni for ni in eligible if prob.nodes[ni].labels[key] == v)
                    for v in values
                }
                running = dict.fromkeys(values, 0)
                soft: dict[str, list[int]] = {v: [] for v in values}
                for qi, q in enumerate(prob.running):
                    qn = prob.running_node[qi]
                    qv = prob.nodes[qn].labels.get(key)
                    if qv is not None and qn in by_value.get(qv, ()) and c.counts(pod, q):
                        if prob.fixed[qi]:
                            running[qv] += 1
                        else:
                            soft[qv].append(qi)
                counted = [qi for qi, q in enumerate(prob.batch) if qi != pi and c.counts(pod, q)]
                count: dict[str, Any] = {}
                for v in values:
                    terms = [
                        z3.If(self.kept(qi), z3.IntVal(1, ctx), z3.IntVal(0, ctx)) for qi in soft[v]
                    ] + [
                        z3.If(
                            z3.And(self.before(qi, pi), self.dom(qi, key, v, by_value[v])),
                            z3.IntVal(1, ctx),
                            z3.IntVal(0, ctx),
                        )
                        for qi in counted
                        if not z3.is_false(self.dom(qi, key, v, by_value[v]))
                    ]
                    count[v] = (
                        z3.IntVal(running[v], ctx) + z3.Sum(terms)
                        if terms
                        else z3.IntVal(running[v], ctx)
                    )
                self_match = 1 if c.matches_self(pod) else 0
                low: Any = z3.IntVal(0, ctx)
                if len(values) >= c.min_domains and values:
                    low = z3.Int(f"spreadmin_{pi}_{ci}", ctx)
                    top = max(running[v] + len(soft[v]) for v in values) + len(counted)
                    # Bounds unguarded: the finite-domain solver needs them.
                    self.constraints += [low >= 0, low <= top]
                    for v in values:
                        self.add(("spread", pi, ci), low <= count[v])
                doms: dict[str, list[int]] = {}
                for ni in self.cands[pi]:
                    u = prob.nodes[ni].labels.get(key)
                    if u is not None:
                        doms.setdefault(u, []).append(ni)
                for u, nis in doms.items():
                    mine = count.get(u, z3.IntVal(0, ctx))
                    here = self._or(self.a[pi, ni] for ni in nis)
                    self.add(
                        ("spread", pi, ci),
                        z3.Implies(here, mine + self_match - low <= c.max_skew),
                    )

    def _symmetry(self) -> None:
        prob = self.problem
        last: dict[int, int] = {}
        prefix: dict[int, list[Any]] = {}
        for pi, cls in enumerate(prob.pod_class):
            if cls in last:
                prev = last[cls]
                self.constraints.append(z3.Implies(self.placed[pi], self.placed[prev]))
                pre = prefix.setdefault(prev, self._prefix_or(prev))
                for k, ni in enumerate(self.cands[pi]):
                    if k + 1 < len(self.cands[pi]):
                        self.constraints.append(z3.Implies(self.a[pi, ni], pre[k]))
            last[cls] = pi

        # Interchangeable nodes: column i before column j in lexicographic
        # order, i.e. node i hosts a lower-indexed pod than any pod of node j
        # (a pod sits on one node, so columns never tie unless both are empty).
        # With the rows' order above this is the double-lex break, which is
        # sound for row and column symmetry together.
        prev_node: dict[int, int] = {}
        for ni, cls in enumerate(prob.node_class):
            if cls in prev_node:
                nj = prev_node[cls]
                before: list[Any] = []
                lower = self.false
                for pi in range(len(prob.batch)):
                    if (pi, ni) in self.a:
                        self.constraints.append(z3.Implies(self.a[pi, ni], lower))
                    if (pi, nj) in self.a:
                        before.append(self.a[pi, nj])
                        v = z3.Bool(f"colpre_{nj}_{pi}", self.ctx)
                        self.constraints.append(v == z3.Or(*before[-1:], lower))
                        lower = v
            prev_node[cls] = ni

        # Identical evictable pods on one node: evict the later only with the earlier.
        seen: dict[tuple[int, Any], int] = {}
        for qi in prob.evictable:
            q = prob.running[qi]
            sig = (prob.running_node[qi], attrs.evolve(q, name="", uid="", start_time=None))
            if sig in seen:
                self.constraints.append(z3.Implies(self.evict[qi], self.evict[seen[sig]]))
            seen[sig] = qi

    def _prefix_or(self, pi: int) -> list[Any]:
        # pre[k] <=> pod pi is on one of its first k+1 candidate nodes.
        out: list[Any] = []
        for k, ni in enumerate(self.cands[pi]):
            if k == 0:
                out.append(self.a[pi, ni])
                continue
            v = z3.Bool(f"pre_{pi}_{k}", self.ctx)
            self.constraints.append(v == z3.Or(out[-1], self.a[pi, ni]))
            out.append(v)
        return out

    # ----------------------------------------------------------------- reading a model

    def placement(self, model: Any) -> dict[int, int]:
        """Batch index -> node index, for the pods the model places."""
        out = {}
        for (pi, ni), v in self.a.items():
            if z3.is_true(model.eval(v, model_completion=True)):
                out[pi] = ni
        return out

    def evicted(self, model: Any) -> list[int]:
        """The running pods (indices into `Problem.running`) the model evicts."""
        return [
            qi for qi, v in self.evict.items() if z3.is_true(model.eval(v, model_completion=True))
        ]

    def pdb_excess(self) -> tuple[list[Any], list[Any]]:
        """Literals o[b, j], j = 1..(members - allowed), for every budget b it can break.

        Returns them and the constraints that define them (for the caller's
        solver): ``sum(evict over b's members) - sum_j o[b, j] <= allowed``,
        and o[b, j+1] implies o[b, j].  Their count is at least
        `Problem.pdb_violations` and, set as small as they may be, equal to it.
        """
        out: list[Any] = []
        rules: list[Any] = []
        for b, (members, allowed) in enumerate(self.problem.pdb_members):
            allowed = max(allowed, 0)
            extra = len(members) - allowed
            if extra <= 0:
                continue
            o = [z3.Bool(f"pdb_{b}_{j}", self.ctx) for j in range(extra)]
            rows = [(self.evict[qi], 1) for qi in members] + [(z3.Not(x), 1) for x in o]
            rules.append(z3.PbLe(rows, allowed + extra))
            rules += [z3.Implies(o[j + 1], o[j]) for j in range(extra - 1)]
            out += o
        return out, rules

    def binding_order(self, model: Any, placed: Mapping[int, int]) -> list[int]:
        """The placed pods in an order in which every bind passes the filters."""

        def key(pi: int) -> tuple[int, int]:
            if pi in self.ord:
                return (model.eval(self.ord[pi], model_completion=True).as_long(), pi)
            return (-1, pi)

        return sorted(placed, key=key)


def count_true(model: Any, lits: Sequence[Any]) -> int:
    return sum(1 for x in lits if z3.is_true(model.eval(x, model_completion=True)))
