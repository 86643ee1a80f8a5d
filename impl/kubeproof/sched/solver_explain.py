"""Why a set of pods cannot be placed: an unsatisfiable core, minimized, in plain words.

Theory of operation
-------------------
`Explainer` builds the *tracked* encoding of a problem (`Encoding(track=True)`):
every (pod, node) pair gets a variable and every constraint family is guarded
by an assumption literal -- "pod p is placed", "p avoids the nodes plugin X
rejects", "node n's capacity of r", "p's anti-affinity term i", and so on.
Asking Z3 for "these pods placed, every family on" gives, when there is no
placement, an unsat core: a subset of the literals that already cannot hold
together.  The core is then shrunk by deletion (drop one literal, re-check;
if still unsatisfiable keep it dropped), pods first, so that the answer names
as few pods and constraints as it can; every check is bounded by the deadline
(none without a clock) and a literal whose check times out is kept.

`words` turns a core into a `Conflict`: the pods, one sentence per
constraint, and a summary.  When the core is made only of capacity and static
node restrictions (the common "not enough room where they may go" case) the
summary adds up what the pods need against what the nodes left to them have
free.  In a preemption problem "free" is what the fixed running pods leave;
the evictable pods are named, with the rule that lets them be evicted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import z3
from attrs import frozen

from .model import CPU, EPHEMERAL_STORAGE, MEMORY, PODS
from .solver_encode import Encoding, Family
from .solver_match import describe_selector
from .solver_problem import Problem

__all__ = ["Conflict", "Explainer", "fmt_amount"]


@frozen
class Conflict:
    """Pods and constraints that cannot all hold: a minimized unsat core, in words."""

    pods: tuple[str, ...]
    constraints: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return self.message


def fmt_amount(resource: str, amount: int) -> str:
    """An amount in the units kubectl would show (CPU in cores or m, bytes in Ki/Mi/Gi)."""
    if resource == CPU:
        return f"{amount // 1000}" if amount % 1000 == 0 else f"{amount}m"
    if resource in (MEMORY, EPHEMERAL_STORAGE) or resource.startswith("hugepages-"):
        for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
            if amount and amount % size == 0:
                return f"{amount // size}{unit}"
        return str(amount)
    return str(amount)


def _names(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none"


class Explainer:
    """One tracked encoding of a problem, asked about several sets of pods."""

    def __init__(
        self,
        problem: Problem,
        *,
        seed: int,
        deadline: float,
        clock: Callable[[], float] | None,
    ) -> None:
        self.problem = problem
        self.deadline = deadline
        self.clock = clock
        self.ctx = z3.Context()
        self.enc = Encoding(problem, self.ctx, track=True, symmetry=False)
        self.place = {pi: self.enc.place_lit(pi) for pi in range(len(problem.batch))}
        self.solver = z3.SolverFor("QF_FD", ctx=self.ctx)
        self.solver.set("random_seed", seed)
        self.solver.add(*self.enc.constraints)
        self.family_of = {str(v): k for k, v in self.enc.lits.items()}

    def _check(self, assumptions: Sequence[Any]) -> Any:
        if self.clock is not None:
            left = self.deadline - self.clock()
            if left <= 0:
                return z3.unknown
            self.solver.set("timeout", max(1, int(left * 1000)))
        return self.solver.check(*assumptions)

    def core(self, pods: Sequence[int]) -> list[Family] | None:
        """A minimized set of families that cannot hold with these pods placed, or None."""
        families = [lit for fam, lit in self.enc.lits.items() if fam[0] != "place"]
        assumptions = [self.place[pi] for pi in pods] + families
        if self._check(assumptions) != z3.unsat:
            return None
        core = list(self.solver.unsat_core())
        # Pods first: the fewest pods is the most useful answer.
        core.sort(key=lambda lit: 0 if str(lit).startswith("track:place") else 1)
        i = 0
        while i < len(core):
            trial = core[:i] + core[i + 1 :]
            if self._check(trial) == z3.unsat:
                kept = {str(x) for x in self.solver.unsat_core()}
                core = [x for x in trial if str(x) in kept]
            else:
                i += 1
        return [self.family_of[str(x)] for x in core]

    # ----------------------------------------------------------------- words

    def words(self, core: Sequence[Family], *, gang: bool, context: str = "") -> Conflict:
        prob = self.problem
        pods = sorted(int(str(f[1])) for f in core if f[0] == "place")
        keys = tuple(prob.batch[pi].key for pi in pods)
        grouped: dict[str, list[str]] = {}
        order = {p.key: i for i, p in enumerate(prob.batch)}
        kinds = (
            "static",
            "capacity",
            "victim",
            "ports",
            "anti",
            "running-anti",
            "affinity",
            "spread",
        )
        for f in sorted(
            core,
            key=lambda f: (
                kinds.index(str(f[0])) if f[0] in kinds else len(kinds),
                tuple(str(x).zfill(8) for x in f[1:]),
            ),
        ):
            if f[0] != "place":
                who, text = self._sentence(f, pods)
                grouped.setdefault(text, [])
                if who:
                    grouped[text].append(who)
        for names in grouped.values():
            names.sort(key=lambda k: order.get(k, 0))
        sentences = tuple(
            text.replace("{pods}", ", ".join(who) if len(who) > 1 else who[0])
            .replace("{each}", " each" if len(who) > 1 else "")
            .replace("{needs}", "need" if len(who) > 1 else "needs")
            if who
            else text
            for text, who in grouped.items()
        )
        if len(pods) == 1:
            head = f"pod {keys[0]} cannot be placed"
        else:
            head = f"pods {_names(list(keys))}{' (gang)' if gang else ''} cannot all be placed"
        summary = self._capacity_summary(core, pods)
        body = summary if summary else "; ".join(sentences)
        message = f"{head}{context}: {body}" if body else head
        return Conflict(keys, sentences, message)

    def _static_nodes(self, pi: int, plugin: str) -> list[str]:
        return [
            self.problem.nodes[ni].name
            for ni, failures in enumerate(self.problem.static[pi])
            if any(f == plugin for f, _ in failures)
        ]

    def _sentence(self, fam: Family, pods: Sequence[int]) -> tuple[str, str]:
        """(the pod it is about or "", the sentence with {pods} standing for it)."""
        prob = self.problem
        kind = fam[0]
        if kind == "static":
            pi, plugin = int(str(fam[1])), str(fam[2])
            pod = prob.batch[pi]
            nodes = self._static_nodes(pi, plugin)
            if plugin == "NodeAffinity":
                allowed = [n.name for ni, n in enumerate(prob.nodes) if ni not in _idx(prob, nodes)]
                return pod.key, (
                    "{pods} may only run on nodes matching the node selector/affinity"
                    f"{_affinity_text(pod)}: {_names(allowed)}"
                )
            reasons = sorted(
                {r for failures in prob.static[pi] for f, r in failures if f == plugin}
            )
            return pod.key, f"{{pods}} cannot use {_names(nodes)} ({plugin}: {'; '.join(reasons)})"
        if kind == "capacity":
            ni, r = int(str(fam[1])), str(fam[2])
            node = prob.nodes[ni]
            soft = prob.evictable_on[ni]
            unless = (
                f", counting {_names([prob.running[qi].key for qi in soft])} as evicted"
                if soft
                else ""
            )
            if r == PODS:
                free = max(0, node.allocatable.pods - len(prob.fixed_on[ni]))
                return "", f"node {node.name} has room for {free} more pod(s){unless}"
            free = prob.free(ni, r)
            used = prob.used[ni][r]
            extra = f" ({fmt_amount(r, used)} of {fmt_amount(r, node.allocatable.get(r))} used)"
            return "", f"node {node.name} has {fmt_amount(r, max(free, 0))} {r} free" + (
                extra if used else ""
            ) + unless
        if kind == "victim":
            q = prob.running[int(str(fam[1]))]
            return "", (
                f"running pod {q.key} (priority {q.priority}) may only be evicted for a pod "
                f"of higher priority that may preempt and is bound to {q.node_name}"
            )
        if kind == "running-anti":
            qi, ti = int(str(fam[1])), int(str(fam[2]))
            q, t = prob.running[qi], prob.running_anti[qi][ti]
            return "", (
                f"running pod {q.key} (priority {q.priority}) admits no pod "
                f"{describe_selector(t.selector)} in its {t.topology_key!r} domain while it runs"
            )
        if kind == "ports":
            ni = int(str(fam[1]))
            users = [prob.batch[pi].key for pi in pods if prob.batch[pi].host_ports()]
            users += [
                f"running {prob.running[qi].key}"
                for qi in prob.evictable_on[ni]
                if prob.running[qi].host_ports()
            ]
            return "", f"on node {prob.nodes[ni].name} the host ports of {_names(users)} conflict"
        if kind == "anti":
            pi, ti = int(str(fam[1])), int(str(fam[2]))
            t = prob.anti[pi][ti]
            return prob.batch[pi].key, (
                f"{{pods}} must{{each}} not share a {t.topology_key!r} domain with another pod "
                f"{describe_selector(t.selector)}"
            )
        if kind == "affinity":
            pi = int(str(fam[1]))
            want = " and ".join(t.describe() for t in prob.affinity[pi])
            return prob.batch[pi].key, (
                f"{{pods}} {{needs}}, in its domain, a pod matching {want} bound before it "
                "(or to be the first such pod in the cluster)"
            )
        if kind == "spread":
            pi, ci = int(str(fam[1])), int(str(fam[2]))
            return prob.batch[pi].key, f"{{pods}} topology spread: {prob.spread[pi][ci].describe()}"
        return "", ":".join(map(str, fam))

    def _after_evicting(self, ni: int) -> str:
        soft = self.problem.evictable_on[ni]
        return (
            f" (after evicting {_names([self.problem.running[qi].key for qi in soft])})"
            if soft
            else ""
        )

    def _capacity_summary(self, core: Sequence[Family], pods: Sequence[int]) -> str:
        # Only when the core is "these pods, these node restrictions, these capacities".
        if not pods or any(f[0] not in ("place", "static", "capacity") for f in core):
            return ""
        prob = self.problem
        caps = sorted((int(str(f[1])), str(f[2])) for f in core if f[0] == "capacity")
        if not caps:
            return ""
        restricted = sorted({str(f[2]) for f in core if f[0] == "static"})
        parts = []
        for r in dict.fromkeys(r for _, r in caps):
            nodes = [ni for ni, rr in caps if rr == r]
            names = ", ".join(prob.nodes[ni].name for ni in nodes)
            if r == PODS:
                need = len(pods)
                room = sum(
                    max(0, prob.nodes[ni].allocatable.pods - len(prob.fixed_on[ni])) for ni in nodes
                )
                evicting = "".join(self._after_evicting(ni) for ni in nodes)
                parts.append(
                    f"they are {need} pods and the nodes open to them ({names}) "
                    f"have room for {room} more"
                    + (" once lower-priority pods go" if evicting else "")
                )
                continue
            asks = [prob.requests[pi].get(r, 0) for pi in pods]
            each = (
                f"{fmt_amount(r, asks[0])} each"
                if len(set(asks)) == 1
                else ", ".join(fmt_amount(r, a) for a in asks)
            )
            frees = [max(prob.free(ni, r), 0) for ni in nodes]
            split = ", ".join(
                f"{prob.nodes[ni].name} {fmt_amount(r, f)}" + self._after_evicting(ni)
                for ni, f in zip(nodes, frees, strict=True)
            )
            verb = "need" if len(pods) > 1 else "needs"
            parts.append(
                f"{verb} {fmt_amount(r, sum(asks))} {r} in total ({each}) on the nodes open to "
                f"{'them' if len(pods) > 1 else 'it'} ({split} free"
                + (", no split fits" if sum(frees) >= sum(asks) else "")
                + ")"
            )
        text = "; ".join(parts)
        if restricted:
            text += "; the other nodes are excluded by " + ", ".join(restricted)
        return text


def _idx(prob: Problem, names: Sequence[str]) -> set[int]:
    return {prob.node_index[n] for n in names}


def _affinity_text(pod: Any) -> str:
    parts = [f"{k}={v}" for k, v in pod.node_selector.items()]
    na = pod.affinity.node_affinity if pod.affinity is not None else None
    if na is not None and na.required is not None:
        terms = []
        for t in na.required.terms:
            exprs = [
                f"{r.key} {r.operator} {','.join(r.values)}".strip() for r in t.match_expressions
            ]
            exprs += [f"{r.key} {r.operator} {','.join(r.values)}" for r in t.match_fields]
            terms.append(" and ".join(exprs) or "<empty term>")
        parts.append(" or ".join(terms))
    return f" ({'; '.join(parts)})" if parts else ""
