"""Selecting and ordering runs: MongoDB-style filters (as W&B's ``Api.runs``) and sort keys.

Fields: ``state``, ``name``, ``id``, ``group``, ``job_type``, ``tags``, ``notes``, ``sweep``,
``host``, ``created_at``, ``runtime``, ``config.<dotted.key>``, ``summary.<key>`` (also
``summary_metrics.<key>``; summary keys keep their ``/``, e.g. ``summary.test/accuracy``).
Operators: ``$eq $ne $lt $lte $gt $gte $in $nin $exists $regex``, and ``$and $or $not``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from runyard.limits import MAX_FILTER_DEPTH
from runyard.store.base import RUN_STATES, RunRecord

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


def compile_filter(
    spec: Mapping[str, Any] | None, *, _level: int = 1
) -> Callable[[RunRecord], bool]:
    """Turn a filter document into a predicate; raises :class:`QueryError` on bad input
    (``$and``/``$or``/``$not`` nested deeper than :data:`runyard.limits.MAX_FILTER_DEPTH`
    included)."""
    if not spec:
        return lambda _run: True
    if not isinstance(spec, Mapping):
        raise QueryError(f"filters must be a dict, got {type(spec).__name__}")
    if _level > MAX_FILTER_DEPTH:
        raise _too_deep_filter()
    parts: list[Callable[[RunRecord], bool]] = []
    for key, cond in spec.items():
        if key == "$and" or key == "$or":
            if not isinstance(cond, Sequence) or isinstance(cond, str):
                raise QueryError(f"{key} takes a list of filters")
            subs = [compile_filter(c, _level=_level + 1) for c in cond]
            parts.append(_all_of(subs) if key == "$and" else _any_of(subs))
        elif key == "$not":
            parts.append(_negate(compile_filter(cond, _level=_level + 1)))
        elif key.startswith("$"):
            raise QueryError(f"unknown operator {key!r} at the top level")
        else:
            _lookup_check(key)
            parts.append(_field_predicate(key, cond))
    return lambda r: all(p(r) for p in parts)


Predicate = Callable[[RunRecord], bool]


def _too_deep_filter() -> QueryError:
    return QueryError(
        f"the filter is nested more than {MAX_FILTER_DEPTH} levels deep ($and/$or/$not, or "
        f"parentheses and 'not'; runyard.limits.MAX_FILTER_DEPTH): write it flatter, e.g. "
        f"'a = 1 and b = 2 and c = 3' instead of nesting each condition"
    )


def _all_of(subs: list[Predicate]) -> Predicate:
    return lambda run: all(s(run) for s in subs)


def _any_of(subs: list[Predicate]) -> Predicate:
    return lambda run: any(s(run) for s in subs)


def _negate(sub: Predicate) -> Predicate:
    return lambda run: not sub(run)


def _lookup_check(field: str) -> None:
    if field in _SIMPLE_FIELDS or field.startswith(("config.", "summary.", "summary_metrics.")):
        return
    raise _unknown_field(field)


def _unknown_field(field: str) -> QueryError:
    return QueryError(
        f"unknown field {field!r}: use one of {', '.join(sorted(_SIMPLE_FIELDS))}, "
        f"config.<key> or summary.<key>"
    )


#: fields whose values are one of a few words: a filter naming another is a typo, said so
_ENUMERATED = {"state": RUN_STATES}


def _check_enumerated(field: str, op: str, arg: Any) -> None:
    allowed = _ENUMERATED.get(field)
    if allowed is None or op not in ("$eq", "$ne", "$in", "$nin"):
        return
    values = arg if isinstance(arg, list | tuple | set) and op in ("$in", "$nin") else [arg]
    for value in values:
        if isinstance(value, str) and value not in allowed:  # a misspelt word, not a number
            import difflib

            close = difflib.get_close_matches(str(value), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise QueryError(
                f"{field} {value!r} is not a run state: {hint}states are {', '.join(allowed)}"
            )


def _field_predicate(field: str, cond: Any) -> Callable[[RunRecord], bool]:
    if not (isinstance(cond, Mapping) and cond and all(str(k).startswith("$") for k in cond)):
        cond = {"$eq": cond}
    checks: list[Callable[[Any], bool]] = []
    for op, arg in cond.items():
        _check_enumerated(_SIMPLE_FIELDS.get(field, field), op, arg)
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
        try:
            pattern = re.compile(str(arg))
        except re.error as exc:
            raise QueryError(
                f"{field}: $regex {str(arg)!r} is not a regular expression: {exc}"
            ) from None
        return lambda v: isinstance(v, str) and pattern.search(v) is not None
    raise QueryError(
        f"{field}: unknown operator {op!r}; use $eq $ne $lt $lte $gt $gte $in $nin $exists $regex"
    )


# -- the filter language (shared with the dashboard: web/src/filter.ts) -------------------------
#
#   expr   := term ("or" term)*
#   term   := factor ("and" factor)*
#   factor := "not" factor | "(" expr ")" | FIELD OP VALUE | FIELD ("in" | "nin") "[" VALUE, ... "]"
#   OP     := = == != < <= > >= ~        (~ is a regular expression search)
#   VALUE  := number | true | false | null | 'quoted' | "quoted" | bare-word
#
# The tokenizer and parser below mirror filter.ts step by step, so the same text gives the same
# JSON filter in the CLI, the server's ``filter=`` parameter and the dashboard
# (tests/test_query_sql.py checks both against one table of examples).

_TOKEN_OPS = ("==", "!=", "<=", ">=", "=", "<", ">", "~")
_OPS = {"=": "$eq", "==": "$eq", "!=": "$ne", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_PUNCT = "()[],"
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", re.ASCII)
_INTEGER = re.compile(r"[-+]?\d+", re.ASCII)
_FIELD = re.compile(r"[A-Za-z_][\w./-]*", re.ASCII)
_DOC_FIELD = re.compile(r"(config|summary|summary_metrics)\..+")
_JS_SPACE = re.compile(r"\s")  # JavaScript's \s is Unicode-aware, like Python's


class _Token:
    __slots__ = ("kind", "pos", "text")

    def __init__(self, kind: str, text: str, pos: int) -> None:
        self.kind, self.text, self.pos = kind, text, pos


def _tokenize(text: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    n = len(text)

    def op_at(j: int) -> str | None:
        return next((o for o in _TOKEN_OPS if text.startswith(o, j)), None)

    while i < n:
        c = text[i]
        if _JS_SPACE.match(c):
            i += 1
            continue
        if c in _PUNCT:
            out.append(_Token("punct", c, i))
            i += 1
            continue
        op = op_at(i)
        if op:
            out.append(_Token("op", op, i))
            i += len(op)
            continue
        if c in "'\"":
            end = text.find(c, i + 1)
            if end < 0:
                raise _FilterSyntax(f"unclosed quote at {i + 1}")
            out.append(_Token("str", text[i + 1 : end], i))
            i = end + 1
            continue
        j = i
        while j < n and not _JS_SPACE.match(text[j]) and text[j] not in _PUNCT and not op_at(j):
            j += 1
        out.append(_Token("word", text[i:j], i))
        i = j
    return out


class _FilterSyntax(Exception):
    pass


def _scalar(tok: _Token) -> Any:
    if tok.kind == "str":
        return tok.text
    return parse_scalar(tok.text)


def parse_scalar(raw: str) -> Any:
    """A bare filter value: ``true``/``false``, ``null``/``none``, a number, else the text."""
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    if _NUMBER.fullmatch(raw):
        return int(raw) if _INTEGER.fullmatch(raw) else float(raw)
    return raw


def parse_expression(text: str) -> dict[str, Any]:
    """The filter language → a filter document (``{}`` for blank text).

    ``"config.optimizer.lr < 0.01 and state = finished"`` →
    ``{"$and": [{"config.optimizer.lr": {"$lt": 0.01}}, {"state": {"$eq": "finished"}}]}``;
    also ``or``, ``not``, parentheses, ``FIELD ~ regex``, ``FIELD in [a, b]``, ``nin``.
    The same grammar as the dashboard's filter box (web/src/filter.ts). Raises
    :class:`QueryError` naming the problem.
    """
    if not text.strip():
        return {}
    try:
        return _Parser(text).parse()
    except _FilterSyntax as exc:
        raise QueryError(
            f"cannot read filter {text!r}: {exc} (write FIELD OP VALUE, e.g. 'state = finished' "
            f"or 'config.lr < 0.01', joined by and/or/not; OP: = != < <= > >= ~ in)"
        ) from None


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokenize(text)
        self.p = 0
        self.depth = 0  # parentheses and 'not' open around the current factor

    def peek(self) -> _Token | None:
        return self.toks[self.p] if self.p < len(self.toks) else None

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "word" and tok.text.lower() == word

    def expect(self, text: str) -> None:
        tok = self.peek()
        if tok is None or tok.text != text:
            where = f"at {tok.pos + 1}" if tok else "at the end"
            raise _FilterSyntax(f"expected '{text}' {where}")
        self.p += 1

    def parse(self) -> dict[str, Any]:
        out = self.expr()
        tok = self.peek()
        if tok is not None:
            raise _FilterSyntax(
                f"unexpected '{tok.text}' at {tok.pos + 1}: join conditions with 'and' / 'or'"
            )
        return out

    def expr(self) -> dict[str, Any]:
        parts = [self.term()]
        while self.is_word("or"):
            self.p += 1
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else {"$or": parts}

    def term(self) -> dict[str, Any]:
        parts = [self.factor()]
        while self.is_word("and"):
            self.p += 1
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else {"$and": parts}

    def factor(self) -> dict[str, Any]:
        tok = self.peek()
        if tok is None:
            raise _FilterSyntax(
                "the filter ends too early: write FIELD OP VALUE, e.g. state = finished"
            )
        if self.is_word("not") or (tok.text == "(" and tok.kind == "punct"):
            self.depth += 1
            if self.depth > MAX_FILTER_DEPTH:
                raise _too_deep_filter()
            self.p += 1
            if tok.text == "(":
                inner = self.expr()
                self.expect(")")
            else:
                inner = {"$not": self.factor()}
            self.depth -= 1
            return inner
        if tok.kind != "word" or not _FIELD.fullmatch(tok.text):
            raise _FilterSyntax(f"expected a field at {tok.pos + 1}, got '{tok.text}'")
        field = tok.text
        if field not in _SIMPLE_FIELDS and not _DOC_FIELD.fullmatch(field):
            raise _unknown_field(field)
        self.p += 1
        if self.is_word("in") or self.is_word("nin"):
            op = "$in" if self.is_word("in") else "$nin"
            self.p += 1
            self.expect("[")
            values: list[Any] = []
            while (v := self.peek()) is not None and v.text != "]":
                if v.kind == "punct":
                    raise _FilterSyntax(f"expected a value at {v.pos + 1}")
                values.append(_scalar(v))
                self.p += 1
                nxt = self.peek()
                if nxt is not None and nxt.text == ",":
                    self.p += 1
            self.expect("]")
            return {field: {op: values}}
        op_tok = self.peek()
        if op_tok is None or op_tok.kind != "op":
            raise _FilterSyntax(f"expected an operator (= != < <= > >= ~ in) after '{field}'")
        self.p += 1
        val = self.peek()
        if val is None or val.kind in ("punct", "op"):
            raise _FilterSyntax(f"expected a value after '{field} {op_tok.text}'")
        self.p += 1
        if op_tok.text == "~":
            return {field: {"$regex": val.text}}
        return {field: {_OPS[op_tok.text]: _scalar(val)}}


def select_runs(
    runs: list[RunRecord],
    spec: Mapping[str, Any] | None,
    order: str | None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[RunRecord], int]:
    """The reference implementation of :meth:`runyard.store.base.Store.query_runs` over runs
    already in the store's default order (newest first): filter, sort, then the page and the
    number of matching runs."""
    predicate = compile_filter(spec)
    found = [r for r in runs if predicate(r)]
    if order:
        found = sort_runs(found, order)
    end = None if limit is None else offset + limit
    return found[offset:end], len(found)


def check_order(order: str | None) -> None:
    """Raise :class:`QueryError` if ``order`` is not a sort key ``sort_runs`` understands."""
    if order:
        _lookup_check(order.lstrip("+-"))


def sort_runs(runs: list[RunRecord], order: str | None) -> list[RunRecord]:
    """Sort by ``order`` (``"-summary.acc"``: descending), stable. Numbers (booleans as 0/1,
    infinities included) come before strings ascending, after them descending; runs whose value
    is missing, null, NaN, a list or a dict go last in either direction."""
    if not order:
        return runs
    descending = order.startswith("-")
    field = order.lstrip("+-")
    _lookup_check(field)

    def key(run: RunRecord) -> tuple[int, int, Any]:
        value = _lookup(run, field)
        if value is _MISSING or value is None or isinstance(value, dict | list):
            return (1, 0, 0)
        if isinstance(value, float) and math.isnan(value):  # NaN has no place in an order
            return (1, 0, 0)
        if isinstance(value, bool | int | float):
            return (0, 0, value)
        return (0, 1, str(value))

    present = [r for r in runs if key(r)[0] == 0]
    absent = [r for r in runs if key(r)[0] == 1]
    present.sort(key=key, reverse=descending)
    return present + absent
