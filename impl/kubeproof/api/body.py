"""Request bodies: media types, size limit, JSON/YAML decoding, type and field checks.

Theory of operation
-------------------
`read_body` turns the raw bytes of a write into a JSON object the way
kube-apiserver's decoder does, refusing with the Status kube would send:

    too large (> 3 MiB, kube's MaxRequestBodyBytes)          413 RequestEntityTooLarge
    a media type it cannot decode                            415 UnsupportedMediaType
    not JSON / YAML, or not an object                        400 BadRequest
    duplicate keys, with fieldValidation=Strict              400 strict decoding error
    apiVersion/kind given and not the endpoint's             400 BadRequest

A missing Content-Type is JSON (the Python client sends none).  Protobuf
bodies are the HTTP layer's to translate into JSON before they get here.
`conform_object` then prunes the object to the kind's schema (see
`schema`): a wrong JSON type is a 400, unknown fields are a 400 with
``Strict``, a warning with ``Warn`` (kube's default) and silently dropped
with ``Ignore``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from .errors import ApiError, bad_request, too_large, unsupported_media_type
from .schema import conform

MAX_REQUEST_BYTES = 3 * 1024 * 1024
"""kube-apiserver's default MaxRequestBodyBytes (3 MiB)."""

WRITE_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


def media_type(content_type: str | None) -> str:
    if content_type is None or not content_type.strip():
        return "application/json"
    return content_type.split(";", 1)[0].strip().lower()


class _Dup(ValueError):
    pass


def _no_dups(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dups: list[str] = []
    for k, v in pairs:
        if k in out:
            dups.append(k)
        out[k] = v
    if dups:
        out["\x00dups"] = dups
    return out


def _collect_dups(value: Any, path: str, found: list[str]) -> Any:
    if isinstance(value, dict):
        dups = value.pop("\x00dups", None)
        for d in dups or []:
            found.append(f"{path}.{d}" if path else d)
        for k, v in value.items():
            _collect_dups(v, f"{path}.{k}" if path else k, found)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _collect_dups(v, f"{path}[{i}]", found)
    return value


def check_size(body: bytes, limit: int) -> None:
    if len(body) > limit:
        raise too_large(limit)


def parse(body: bytes, mt: str, what: str = "body") -> tuple[Any, list[str]]:
    """(decoded value, duplicate field paths)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request(f"the {what} of the request is not valid UTF-8") from None
    if not text.strip():
        raise bad_request("Object 'Kind' is missing in '" + text + "'")
    dups: list[str] = []
    if mt in ("application/yaml", "application/apply-patch+yaml"):
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise bad_request(f"error converting YAML to JSON: {str(e).splitlines()[0]}") from None
        # YAML permits things JSON cannot represent (dates, non-string keys).
        try:
            value = json.loads(json.dumps(value, default=str))
        except (TypeError, ValueError) as e:
            raise bad_request(f"error converting YAML to JSON: {e}") from None
        return value, dups
    try:
        value = json.loads(text, object_pairs_hook=_no_dups, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise bad_request(
            f"couldn't get version/kind; json parse error: {_json_error(e)}"
        ) from None
    _collect_dups(value, "", dups)
    if _SURROGATE_ESCAPE.search(text):
        value = _replace_lone_surrogates(value)
    return value, dups


# Go's encoding/json decodes an escaped lone surrogate ("\ud800") to U+FFFD; Python
# keeps the surrogate, which no UTF-8 encoder (the store's, the response's) accepts.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replace_lone_surrogates(k): _replace_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_lone_surrogates(v) for v in value]
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _json_error(e: BaseException) -> str:
    if isinstance(e, json.JSONDecodeError):
        if e.msg.startswith("Expecting value") and e.pos >= len(e.doc.rstrip()):
            return "unexpected end of JSON input"
        return f"invalid character at offset {e.pos}: {e.msg}"
    if isinstance(e, RecursionError):
        return "exceeded max depth"
    return str(e)


def read_object(
    body: bytes,
    content_type: str | None,
    *,
    limit: int = MAX_REQUEST_BYTES,
    api_version: str,
    kind: str,
    field_validation: str,
) -> tuple[dict[str, Any], list[str]]:
    """The decoded, conformed object and the warnings to send."""
    check_size(body, limit)
    mt = media_type(content_type)
    if mt not in WRITE_TYPES:
        raise unsupported_media_type(mt, WRITE_TYPES)
    if mt == "application/vnd.kubernetes.protobuf":
        raise unsupported_media_type(mt, ("application/json", "application/yaml"))
    value, dups = parse(body, mt)
    if not isinstance(value, dict):
        raise bad_request(
            f"couldn't get version/kind; json parse error: json: cannot unmarshal "
            f"{_json_kind(value)} into Go value of type struct {{ APIVersion string "
            '"json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }'
        )
    check_type_meta(value, api_version, kind)
    return conform_object(kind, value, dups, field_validation)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "null"


def check_type_meta(value: dict[str, Any], api_version: str, kind: str) -> None:
    av = value.get("apiVersion")
    k = value.get("kind")
    if av is not None and not isinstance(av, str):
        raise bad_request("json: cannot unmarshal apiVersion: expected a string")
    if k is not None and not isinstance(k, str):
        raise bad_request("json: cannot unmarshal kind: expected a string")
    if av and av != api_version:
        raise bad_request(
            f"the API version in the data ({av}) does not match the expected API version "
            f"({api_version})"
        )
    if k and k != kind:
        raise bad_request(
            f"the object provided is unrecognized (must be of type {kind}): object kind "
            f'"{k}" does not match "{kind}"'
        )


def conform_object(
    kind: str, value: dict[str, Any], dups: list[str], field_validation: str
) -> tuple[dict[str, Any], list[str]]:
    obj, unknown = conform(kind, value)
    problems = [f'json: duplicate field "{d}"' for d in dups] + [
        f'unknown field "{u}"' for u in unknown
    ]
    if problems and field_validation == "Strict":
        raise bad_request("strict decoding error: " + ", ".join(problems))
    warnings = problems if field_validation == "Warn" else []
    return obj, warnings


def field_validation_param(value: str | None) -> str:
    if value is None or value == "":
        return "Warn"
    if value not in ("Ignore", "Warn", "Strict"):
        raise bad_request(
            f'fieldValidation: Unsupported value: "{value}": supported values: "Ignore", '
            '"Strict", "Warn"'
        )
    return value


def warning_headers(warnings: list[str]) -> tuple[tuple[str, str], ...]:
    return tuple(("Warning", f"299 - {json.dumps(w)}") for w in warnings)


__all__ = ["ApiError"]
