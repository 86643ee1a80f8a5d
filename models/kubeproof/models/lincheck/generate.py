"""Random histories that are linearizable by construction (for tests and benches).

Theory of operation
-------------------
Clients run one operation at a time.  Each operation gets a random
interval [call, ret] and, inside it, a random *linearization point*; the
model then runs the operations in the order of their points and each one
answers what the sequential object answers there.  The result is
linearizable: the order of the points is a witness.

A fraction of operations time out: they become pending (no return, no
output), take effect at a random point after their call or never, and
their client is retired, as Jepsen gives a crashed worker a new process
id.  Randomness comes only from the `random.Random` passed in.

`InputMaker`s draw inputs: `kv_inputs` (append values are unique, as in
Porcupine's data, so a get reveals the order of the appends before it)
and `register_inputs` (small values, like Jepsen's etcd test).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from kubeproof.models.sequential import AnyModel

from .history import History, Operation
from .kv_model import KvInput
from .register_model import RegisterInput

InputMaker = Callable[[random.Random, int], Any]
"""Draws the input of the n-th operation."""


def kv_inputs(keys: int = 3, put_rate: float = 0.05) -> InputMaker:
    def make(rng: random.Random, n: int) -> KvInput:
        key = str(rng.randrange(keys))
        r = rng.random()
        if r < 0.45:
            return KvInput("get", key)
        op = "put" if r < 0.45 + put_rate else "append"
        return KvInput(op, key, f"x {n} y")  # type: ignore[arg-type]

    return make


def register_inputs(values: int = 5) -> InputMaker:
    def make(rng: random.Random, n: int) -> RegisterInput:
        r = rng.random()
        if r < 0.4:
            return RegisterInput("read")
        if r < 0.7:
            return RegisterInput("write", rng.randrange(values))
        return RegisterInput("cas", rng.randrange(values), rng.randrange(values))

    return make


def linearizable_history(
    model: AnyModel,
    inputs: InputMaker,
    rng: random.Random,
    *,
    clients: int = 5,
    operations: int = 50,
    pending_rate: float = 0.0,
    max_duration: int = 10,
    max_gap: int = 3,
) -> History:
    """A random history of `operations` ops that is linearizable under `model`."""
    # (point, id, client, call, ret or None, input); point None: never took effect.
    planned: list[tuple[float | None, int, int, int, int | None, Any]] = []
    clock = [rng.randrange(max_gap + 1) for _ in range(clients)]
    ids = list(range(clients))
    next_client = clients
    for n in range(operations):
        slot = rng.randrange(clients)
        call = clock[slot] + rng.randrange(max_gap + 1)
        inp = inputs(rng, n)
        if rng.random() < pending_rate:
            horizon = call + max_duration * 4
            point = call + rng.random() * (horizon - call) if rng.random() < 0.5 else None
            planned.append((point, n, ids[slot], call, None, inp))
            ids[slot] = next_client  # a timed-out worker comes back as a new client
            next_client += 1
            clock[slot] = call + 1
            continue
        ret = call + 1 + rng.randrange(max_duration)
        point = call + rng.random() * (ret - call)
        planned.append((point, n, ids[slot], call, ret, inp))
        clock[slot] = ret + 1
    outputs: dict[int, Any] = {}
    states: dict[Any, Any] = {}  # one object per partition key, as the checker sees it
    effective = [(p[0], p[1], p[5]) for p in planned if p[0] is not None]
    for _point, n, inp in sorted(effective, key=lambda e: (e[0], e[1])):
        key = model.partition_key(inp)
        states[key], outputs[n] = model.run(states.get(key, model.init()), inp)
    return History(
        Operation(n, client, call, inp, ret, None if ret is None else outputs[n])
        for _point, n, client, call, ret, inp in planned
    )
