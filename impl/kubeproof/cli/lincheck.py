"""`kubeproof lincheck HISTORY`: is a recorded history linearizable?

Exit status: 0 linearizable, 1 not linearizable (a minimal witness is
printed), 2 unreadable input or bad flags, 3 undecided (``--timeout`` ran
out first).  The model can be inferred from Porcupine kv logs (kv) and
Jepsen etcd logs (etcd-register), and from a kubeproof JSON header that
names one; ``--model`` overrides or supplies it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from kubeproof.models.lincheck import (
    MODELS,
    AnyModel,
    CheckResult,
    HistoryFormatError,
    Operation,
    ParsedHistory,
    Verdict,
    Witness,
    check,
    detect_format,
    get_model,
    minimize,
    parse_history,
    partition,
)

# Which models can read each format (the first is the one it implies).
_FORMAT_MODELS = {
    "porcupine-kv": ("kv", "kv-nopartition"),
    "jepsen-etcd": ("etcd-register",),
}

EXIT_OK, EXIT_ILLEGAL, EXIT_INPUT, EXIT_UNKNOWN = 0, 1, 2, 3


def _fail_input(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_INPUT)


def _load(path: Path, model_name: str | None) -> tuple[ParsedHistory, AnyModel]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        _fail_input(f"cannot read {path}: {e.strerror or e}")
    except UnicodeDecodeError as e:
        _fail_input(f"{path}: not UTF-8 text (byte {e.start})")
    fmt = detect_format(text)
    if model_name is not None and fmt in _FORMAT_MODELS and model_name not in _FORMAT_MODELS[fmt]:
        _fail_input(
            f"{path} is a {fmt} history; --model {model_name} cannot read it "
            f"(use {' or '.join(_FORMAT_MODELS[fmt])})"
        )
    model = get_model(model_name) if model_name is not None else None
    try:
        parsed = parse_history(text, str(path), model)
    except HistoryFormatError as e:
        _fail_input(str(e))
    if model is None:
        if parsed.model is None:  # pragma: no cover - JSON without a model already fails
            _fail_input(f"{path}: cannot tell the model; give --model")
        model = get_model(parsed.model)
    elif parsed.format == "json" and parsed.model not in (None, model.name):
        _fail_input(f"{path} says its model is {parsed.model}; --model {model.name} disagrees")
    return parsed, model


def _where(op: Operation, fmt: str) -> str:
    # Log formats number operations by the line of their invoke.
    return f"line {op.id}" if fmt != "json" else f"op {op.id}"


def _op_json(op: Operation, model: AnyModel) -> dict[str, Any]:
    return {
        "id": op.id,
        "client": op.client,
        "call": op.call,
        "return": op.ret,
        "op": model.describe_operation(op.input, op.output),
    }


def _witness_json(w: Witness, by_id: dict[int, Operation], model: AnyModel) -> dict[str, Any]:
    return {
        "partition": None if w.partition is None else str(w.partition),
        "prefix": list(w.prefix),
        "state": model.describe_state(w.state),
        "stuck": [_op_json(by_id[i], model) for i in w.stuck],
        "core": [_op_json(by_id[i], model) for i in w.core],
        "context": [_op_json(by_id[i], model) for i in w.context],
        "cut": w.cut,
        "minimal": w.minimal,
    }


def _print_ops(
    ids: tuple[int, ...], by_id: dict[int, Operation], model: AnyModel, fmt: str
) -> None:
    for i in ids:
        op = by_id[i]
        ret = "pending" if op.ret is None else f"returned {op.ret:g}"
        click.echo(
            f"    {_where(op, fmt):>10}  client {op.client!s:>4}  "
            f"{model.describe_operation(op.input, op.output)}   [called {op.call:g}, {ret}]"
        )


def _print_witness(
    w: Witness, by_id: dict[int, Operation], model: AnyModel, fmt: str, max_context: int = 20
) -> None:
    if w.partition is not None:
        click.echo(f"In partition {w.partition!r}:")
    click.echo(
        f"  the longest linearizable prefix found has {len(w.prefix)} operations; "
        f"the state after it is {model.describe_state(w.state)}"
    )
    if w.stuck:
        click.echo("  and these, which could come next, do not fit that state:")
        _print_ops(w.stuck, by_id, model, fmt)
    cut = ""
    if w.cut is not None:
        cut = (
            f" (in the history up to line {w.cut:g})"
            if fmt != "json"
            else f" (up to time {w.cut:g})"
        )
    shrunk = "minimal" if w.minimal else "shrunk (a budget stopped the shrinking early)"
    click.echo(f"Witness, {shrunk}: these {len(w.core)} operations cannot be ordered{cut}:")
    _print_ops(w.core, by_id, model, fmt)
    if w.context:
        click.echo(
            f"  even allowing these {len(w.context)} to take effect at any time after their "
            "call, or not at all:"
        )
        _print_ops(w.context[:max_context], by_id, model, fmt)
        if len(w.context) > max_context:
            click.echo(f"    ... and {len(w.context) - max_context} more (see --json)")


def _deadline(timeout: float | None) -> Callable[[], bool] | None:
    if timeout is None:
        return None
    end = time.monotonic() + timeout
    return lambda: time.monotonic() > end


@click.command("lincheck")
@click.argument("history", type=click.Path(dir_okay=False, path_type=Path, exists=True))
@click.option(
    "--model",
    "model_name",
    type=click.Choice(sorted(MODELS)),
    default=None,
    help="Sequential model.  Inferred when the file says: Porcupine kv logs -> kv, "
    "Jepsen etcd logs -> etcd-register, kubeproof JSON -> the model in its header.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Give up after this many seconds: the verdict is then unknown (exit 3).",
)
@click.option(
    "--no-minimize",
    is_flag=True,
    help="On a violation, skip shrinking the witness (report the search's own).",
)
def command(
    history: Path, model_name: str | None, as_json: bool, timeout: float | None, no_minimize: bool
) -> None:
    """Check HISTORY for linearizability against a sequential model.

    HISTORY is a Porcupine kv log (c*.txt), a Jepsen etcd log (etcd_*.log)
    or a kubeproof JSON Lines history (docs/lincheck.md).  Exit status: 0
    linearizable, 1 not (with a minimal witness), 2 bad input, 3 unknown
    (the timeout ran out).
    """
    parsed, model = _load(history, model_name)
    should_stop = _deadline(timeout)
    started = time.perf_counter()
    result: CheckResult = check(parsed.history, model, should_stop=should_stop)
    seconds = time.perf_counter() - started
    by_id = parsed.history.by_id()
    witness: Witness | None = None
    failure = result.failure
    if failure is not None:
        if no_minimize:
            witness = Witness(
                failure.key, failure.longest, failure.state, failure.stuck, (), (), None, False
            )
        else:
            ops = partition(parsed.history, model)[failure.key]
            witness = minimize(model, failure, ops, should_stop=_deadline(timeout))
    code = {Verdict.OK: EXIT_OK, Verdict.ILLEGAL: EXIT_ILLEGAL, Verdict.UNKNOWN: EXIT_UNKNOWN}[
        result.verdict
    ]
    if as_json:
        report: dict[str, Any] = {
            "linearizable": result.linearizable,
            "verdict": result.verdict.value,
            "operations": result.operations,
            "seconds": round(seconds, 6),
            "history": str(history),
            "format": parsed.format,
            "model": model.name,
            "partitions": len(partition(parsed.history, model)),
            "explored": result.explored,
        }
        if witness is not None:
            report["witness"] = _witness_json(witness, by_id, model)
        click.echo(json.dumps(report))
        sys.exit(code)
    summary = (
        f"{history} (model {model.name}, {result.operations} operations, "
        f"{len(partition(parsed.history, model))} partition(s), {seconds:.3f} s)"
    )
    if result.verdict is Verdict.OK:
        click.echo(f"linearizable: {summary}")
    elif result.verdict is Verdict.UNKNOWN:
        click.echo(f"unknown (gave up after the --timeout): {summary}")
    else:
        click.echo(f"NOT linearizable: {summary}")
        assert witness is not None
        _print_witness(witness, by_id, model, parsed.format)
    sys.exit(code)
