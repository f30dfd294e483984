"""Selecting and ordering runs: MongoDB-style filters (as W&B's ``Api.runs``) and sort keys.

Fields: ``state``, ``name``, ``id``, ``group``, ``job_type``, ``tags``, ``notes``, ``sweep``,
``host``, ``created_at``, ``runtime``, ``config.<dotted.key>``, ``summary.<key>`` (also
``summary_metrics.<key>``; summary keys keep their ``/``, e.g. ``summary.test/accuracy``).
Operators: ``$eq $ne $lt $lte $gt $gte $in $nin $exists $regex``, and ``$and $or $not``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runyard.store.base import RunRecord

_MISSING = object()
_SIMPLE_FIELDS = {
    "state": "state",
    "name": "name",
    "display_name": "name",
    "id": "run_id",
    "run_id": "run_id",
    "group": "group",
    "job_type": "job_type",
    "jobType": "job_type",
    "tags": "tags",
    "notes": "notes",
    "sweep": "sweep_id",
    "sweep_id": "sweep_id",
    "host": "host",
    "created_at": "created_at",
    "createdAt": "created_at",
    "runtime": "runtime",
    "last_step": "last_step",
    "entity": "entity",
    "project": "project",
}


class QueryError(ValueError):
    """A filter or sort key that cannot be understood; the message names it."""


def field_value(run: RunRecord, field: str) -> Any:
    """The value of ``field`` for ``run`` (``_MISSING`` sentinel-free: returns None if absent)."""
    value = _lookup(run, field)
    return None if value is _MISSING else value


def _lookup(run: RunRecord, field: str) -> Any:
    if field in _SIMPLE_FIELDS:
        return getattr(run, _SIMPLE_FIELDS[field])
    for prefix, doc in (
        ("config.", run.config),
        ("summary.", run.summary),
        ("summary_metrics.", run.summary),
    ):
        if field.startswith(prefix):
            key = field[len(prefix) :]
            if prefix == "config.":
                return _dotted(doc, key)
            if key in doc:
                return doc[key]
            return _dotted(doc, key)
    raise QueryError(
        f"unknown field {field!r}: use one of {', '.join(sorted(_SIMPLE_FIELDS))}, "
        f"config.<key> or summary.<key>"
    )


def _dotted(doc: Any, key: str) -> Any:
    node = doc
    for part in key.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    if isinstance(node, Mapping) and set(node) == {"value"}:  # W&B's {"value": x} config form
        return node["value"]
    return node


def compile_filter(spec: Mapping[str, Any] | None) -> Callable[[RunRecord], bool]:
    """Turn a filter document into a predicate; raises :class:`QueryError` on bad input."""
    if not spec:
        return lambda _run: True
    if not isinstance(spec, Mapping):
        raise QueryError(f"filters must be a dict, got {type(spec).__name__}")
    parts: list[Callable[[RunRecord], bool]] = []
    for key, cond in spec.items():
        if key == "$and" or key == "$or":
            if not isinstance(cond, Sequence) or isinstance(cond, str):
                raise QueryError(f"{key} takes a list of filters")
            subs = [compile_filter(c) for c in cond]
            parts.append(_all_of(subs) if key == "$and" else _any_of(subs))
        elif key == "$not":
            parts.append(_negate(compile_filter(cond)))
        elif key.startswith("$"):
            raise QueryError(f"unknown operator {key!r} at the top level")
        else:
            _lookup_check(key)
            parts.append(_field_predicate(key, cond))
    return lambda r: all(p(r) for p in parts)


Predicate = Callable[[RunRecord], bool]


def _all_of(subs: list[Predicate]) -> Predicate:
    return lambda run: all(s(run) for s in subs)


def _any_of(subs: list[Predicate]) -> Predicate:
    return lambda run: any(s(run) for s in subs)


def _negate(sub: Predicate) -> Predicate:
    return lambda run: not sub(run)


def _lookup_check(field: str) -> None:
    if field in _SIMPLE_FIELDS or field.startswith(("config.", "summary.", "summary_metrics.")):
        return
    raise QueryError(
        f"unknown field {field!r}: use one of {', '.join(sorted(_SIMPLE_FIELDS))}, "
        f"config.<key> or summary.<key>"
    )


def _field_predicate(field: str, cond: Any) -> Callable[[RunRecord], bool]:
    if not (isinstance(cond, Mapping) and cond and all(str(k).startswith("$") for k in cond)):
        cond = {"$eq": cond}
    checks: list[Callable[[Any], bool]] = []
    for op, arg in cond.items():
        checks.append(_operator(field, op, arg))
    return lambda r: all(c(_lookup(r, field)) for c in checks)


def _operator(field: str, op: str, arg: Any) -> Callable[[Any], bool]:
    def ordered(cmp: Callable[[Any, Any], bool]) -> Callable[[Any], bool]:
        def check(value: Any) -> bool:
            if value is _MISSING or value is None:
                return False
            try:
                return bool(cmp(value, arg))
            except TypeError:
                return False

        return check

    if op == "$eq":
        return lambda v: (
            (arg in v) if isinstance(v, list) and not isinstance(arg, list) else v == arg
        )
    if op == "$ne":
        return lambda v: v != arg
    if op == "$lt":
        return ordered(lambda a, b: a < b)
    if op == "$lte":
        return ordered(lambda a, b: a <= b)
    if op == "$gt":
        return ordered(lambda a, b: a > b)
    if op == "$gte":
        return ordered(lambda a, b: a >= b)
    if op in ("$in", "$nin"):
        if not isinstance(arg, list | tuple | set):
            raise QueryError(f"{field}: {op} takes a list")
        wanted = list(arg)

        def member(v: Any) -> bool:
            if isinstance(v, list):
                return any(x in wanted for x in v)
            return v in wanted

        return member if op == "$in" else (lambda v: not member(v))
    if op == "$exists":
        return lambda v: (v is not _MISSING) == bool(arg)
    if op == "$regex":
        pattern = re.compile(str(arg))
        return lambda v: isinstance(v, str) and pattern.search(v) is not None
    raise QueryError(
        f"{field}: unknown operator {op!r}; use $eq $ne $lt $lte $gt $gte $in $nin $exists $regex"
    )


_EXPR = re.compile(r"^\s*([A-Za-z_][\w./-]*)\s*(==|!=|<=|>=|=|<|>|~)\s*(.*?)\s*$")
_OPS = {"=": "$eq", "==": "$eq", "!=": "$ne", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


def parse_expression(text: str) -> dict[str, Any]:
    """``"config.lr<0.01"`` → ``{"config.lr": {"$lt": 0.01}}`` (used by the CLI's --filter)."""
    match = _EXPR.match(text)
    if not match or match.group(3)[:1] in ("<", ">", "=", "!") or not match.group(3):
        raise QueryError(
            f"cannot read filter {text!r}: write FIELD OP VALUE, e.g. 'state=finished' or "
            f"'config.lr<0.01' (OP: = != < <= > >= ~ for regex)"
        )
    field, op, raw = match.groups()
    _lookup_check(field)
    value = parse_scalar(raw)
    if op == "~":
        return {field: {"$regex": raw}}
    return {field: {_OPS[op]: value}}


def parse_scalar(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def sort_runs(runs: list[RunRecord], order: str | None) -> list[RunRecord]:
    """Sort by ``order`` (``"-summary.acc"``: descending). Runs lacking the key go last."""
    if not order:
        return runs
    descending = order.startswith("-")
    field = order.lstrip("+-")
    _lookup_check(field)

    def key(run: RunRecord) -> tuple[int, int, Any]:
        value = _lookup(run, field)
        if value is _MISSING or value is None or isinstance(value, dict | list):
            return (1, 0, 0)
        if isinstance(value, bool | int | float):
            return (0, 0, value)
        return (0, 1, str(value))

    present = [r for r in runs if key(r)[0] == 0]
    absent = [r for r in runs if key(r)[0] == 1]
    present.sort(key=key, reverse=descending)
    return present + absent
