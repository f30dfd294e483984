"""``Store.query_runs`` in SQL: :mod:`runyard.query` filter documents and sort keys translated
into one statement over ``runs`` (SQLite and PostgreSQL), so that a page of a 10,000-run project
is filtered, sorted, counted and cut in the database and only the page's documents are decoded.

The translation keeps :mod:`runyard.query`'s Python semantics exactly (tests/test_query_sql.py
compares both on generated runs):

* A field's value is typed as the JSON document says: numbers and booleans compare as numbers
  (``true`` is 1, as in Python), strings as strings by code point (SQLite's binary collation,
  PostgreSQL's ``COLLATE "C"``); a number never equals or orders against a string, null never
  orders; lists and dicts never order. ``$eq``/``$in`` on a list value test membership, ``$ne``
  and ``$nin`` are their negations (``$ne`` does not look into lists, like ``v != a``).
* ``config.a.b`` walks dicts (and list indexes for digit parts) and unwraps W&B's
  ``{"value": x}``; ``summary.<key>`` is the key as written (``/`` and ``.`` included) if
  present, else the dotted walk (``summary.loss.min`` reads a ``{"min": ...}`` aggregate).
* Non-finite floats are stored as ``{"__f__": "nan" | "inf" | "-inf"}``. ``±inf`` are numbers
  (greater/less than every finite number). NaN equals nothing (``$ne`` is true) and orders
  against nothing; in a sort NaN goes last with the missing values (``query.sort_runs`` does
  the same).
* A sort puts numbers before strings ascending (strings first descending) and runs lacking a
  sortable value last either way; ties keep the default order, newest first.

What is not translated raises :class:`Untranslatable` and the store runs the Python path for
that query: a filter argument that is a list or dict (``$eq: [..]``), a non-finite or
out-of-range number, a key SQLite's JSON path cannot quote (``"``), unusual list-index parts, and
on PostgreSQL a ``$regex`` whose Python and PostgreSQL meanings could differ (``\\d``, ``\\w``,
classes, look-arounds, ...). SQLite's ``$regex`` calls Python's ``re`` (registered on connect).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Name of the SQLite function ``runyard_regexp(pattern, text)`` (see :func:`sqlite_regexp`).
REGEXP_FUNCTION = "runyard_regexp"

_INF = '{"__f__":"inf"}'
_NINF = '{"__f__":"-inf"}'
_INT64 = 2**63


class Untranslatable(Exception):
    """The query needs the Python path (see the module docstring)."""


def sqlite_regexp(pattern: str | None, value: Any) -> int | None:
    """``re.search`` for SQLite (``runyard.query``'s ``$regex`` semantics)."""
    if pattern is None or not isinstance(value, str):
        return None
    return 1 if re.search(pattern, value) is not None else 0


# Builtin fields: (column, kind) where kind is "str", "num" or "json".
_COLUMNS: dict[str, tuple[str, str]] = {
    "state": ("state", "str"),
    "name": ("name", "str"),
    "run_id": ("run_id", "str"),
    "group": ("group_name", "str"),
    "job_type": ("job_type", "str"),
    "notes": ("notes", "str"),
    "sweep_id": ("sweep_id", "str"),
    "host": ("host", "str"),
    "entity": ("entity", "str"),
    "project": ("project", "str"),
    "created_at": ("created_at", "num"),
    "runtime": ("runtime", "num"),
    "last_step": ("last_step", "num"),
    "tags": ("tags", "json"),
}


@dataclass
class _Val:
    """SQL for one field of a run: each boolean never NULL; ``num``/``text`` are SQL values
    that are NULL when the value is not a number / not a string (Python ``None``: never)."""

    present: str
    is_null: str
    num: str | None
    text: str | None
    elems: Callable[[Callable[[_Val], str]], str] | None = None


@dataclass
class Plan:
    """The translated query: ``where`` and ``order`` over the run source of :func:`build`."""

    where: str
    order: list[str]
    params: dict[str, Any]
    #: ``expr AS name`` computed once per run in the inner query (a field's JSON type and value
    #: on SQLite, its jsonb node on PostgreSQL), which ``where``/``order`` read as ``q.name``
    columns: list[str] = field(default_factory=list)


class _Compiler:
    def __init__(self, postgresql: bool) -> None:
        self.pg = postgresql
        self.params: dict[str, Any] = {}
        self.columns: list[str] = []
        self._slots: dict[str, int] = {}

    # -- parameters -----------------------------------------------------------------------------

    def param(self, value: Any) -> str:
        name = f"q{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def num_param(self, value: bool | int | float) -> str:
        if isinstance(value, float) and not math.isfinite(value):
            raise Untranslatable("non-finite argument")
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int) and not -_INT64 <= value < _INT64:
            raise Untranslatable("integer out of range")
        if self.pg:  # numeric, exact: the shortest repr of a float is what the documents hold
            return f"CAST({self.param(repr(value))} AS numeric)"
        return self.param(value)

    def text_param(self, value: str) -> str:
        if self.pg:
            if "\x00" in value:
                raise Untranslatable("NUL in a string")
            return f"CAST({self.param(value)} AS text)"
        return self.param(value)

    def collate(self, text: str) -> str:
        return f'({text}) COLLATE "C"' if self.pg else text

    # -- fields ---------------------------------------------------------------------------------

    def col(self, name: str) -> str:
        return f"q.{name}"

    def doc(self, name: str) -> str:
        """The document in the inner query: PostgreSQL reads the jsonb copies of config and
        summary (migration 0005)."""
        if self.pg:
            if name == "tags":
                # jsonb cannot hold U+0000: a tag stored with one (before the edges refused
                # them) must not make every tags filter fail, so it reads as U+FFFD here.
                return "CAST(replace(runs.tags, '\\u0000', '\\ufffd') AS jsonb)"
            return f"runs.{name}_jsonb"
        return f"runs.{name}"

    def _pg_slot(self, d: str, ident: str, node: Callable[[], str]) -> str:
        """The jsonb node of document ``d``, taken once per run in the inner query: each use of
        a document reads (detoasts) it again; the node is small."""
        slot = self._slots.get(f"{d}|{ident}")
        if slot is None:
            slot = self._slots[f"{d}|{ident}"] = len(self._slots)
            self.columns.append(f"{node()} AS r{slot}")
        return f"q.r{slot}"

    def value(self, field_name: str) -> _Val:
        from runyard.query import _SIMPLE_FIELDS

        if field_name in _SIMPLE_FIELDS:
            column, kind = _COLUMNS[_SIMPLE_FIELDS[field_name]]
            if kind == "json":
                return self.json_root(column)
            ref = self.col(column)
            if kind == "num":
                return _Val("TRUE", "FALSE", ref, None)
            return _Val("TRUE", f"({ref} IS NULL)", None, ref)
        if field_name.startswith("config."):
            return self.json_field("config", field_name[len("config.") :], direct=False)
        if field_name.startswith("summary."):
            return self.json_field("summary", field_name[len("summary.") :], direct=True)
        if field_name.startswith("summary_metrics."):
            return self.json_field("summary", field_name[len("summary_metrics.") :], direct=True)
        raise Untranslatable(field_name)  # compile_filter has refused it already

    # SQLite: a value is (document, JSON path as an SQL text expression).
    def _sq_key(self, key: str) -> str:
        if '"' in key or "\\" in key:
            raise Untranslatable("key SQLite cannot quote")
        return f'."{key}"'

    def _sq_dotted(self, d: str, key: str) -> str:
        """The JSON path of ``key``'s dotted walk (digit parts index lists)."""
        path = self.param("$")
        digit_parts = 0
        for part in key.split("."):
            if part.isdigit():
                if not part.isascii():
                    raise Untranslatable("non-ASCII digits")
                digit_parts += 1
                if digit_parts > 2:
                    raise Untranslatable("too many index parts")
                path = (
                    f"(CASE WHEN json_type({d}, {path}) = 'array' "
                    f"THEN {path} || {self.param(f'[{int(part)}]')} "
                    f"ELSE {path} || {self.param(self._sq_key(part))} END)"
                )
            else:
                path = f"({path} || {self.param(self._sq_key(part))})"
        return path

    def _sq_slot(self, d: str, ident: str, path: Callable[[], str]) -> tuple[str, str]:
        """The JSON type and value at ``path`` of document ``d``, computed once per run in the
        inner query (each JSON function call parses the whole document); a field used twice
        shares them."""
        slot = self._slots.get(f"{d}|{ident}")
        if slot is None:
            slot = self._slots[f"{d}|{ident}"] = len(self._slots)
            where = path()
            self.columns.append(f"json_type({d}, {where}) AS t{slot}")
            self.columns.append(f"json_extract({d}, {where}) AS v{slot}")
        return f"q.t{slot}", f"q.v{slot}"

    def _sq_unwrap(self, t: str, v: str) -> tuple[str, str]:
        """W&B's ``{"value": x}`` is ``x``: read from the extracted object's (small) text."""
        prefix = self.param('{"value":')
        cond = (
            f"({t} = 'object' AND substr({v}, 1, 9) = {prefix} "
            f"AND (SELECT count(*) FROM json_each({v})) = 1)"
        )
        inner = self.param('$."value"')
        return (
            f"(CASE WHEN {cond} THEN json_type({v}, {inner}) ELSE {t} END)",
            f"(CASE WHEN {cond} THEN json_extract({v}, {inner}) ELSE {v} END)",
        )

    def _sq_val(self, t: str, v: str) -> _Val:
        num = (
            f"(CASE WHEN {t} IN ('integer', 'real', 'true', 'false') THEN {v} "
            f"WHEN {t} = 'object' AND {v} = {self.param(_INF)} THEN 9e999 "
            f"WHEN {t} = 'object' AND {v} = {self.param(_NINF)} THEN -9e999 END)"
        )
        text = f"(CASE WHEN {t} = 'text' THEN {v} END)"

        def elems(pred: Callable[[_Val], str]) -> str:
            inf, ninf = self.param(_INF), self.param(_NINF)
            elem = _Val(
                "TRUE",
                "COALESCE(e.type = 'null', FALSE)",
                f"(CASE WHEN e.type IN ('integer', 'real', 'true', 'false') THEN e.atom "
                f"WHEN e.type = 'object' AND e.value = {inf} THEN 9e999 "
                f"WHEN e.type = 'object' AND e.value = {ninf} THEN -9e999 END)",
                "(CASE WHEN e.type = 'text' THEN e.atom END)",
            )
            return (
                f"(CASE WHEN {t} = 'array' THEN EXISTS (SELECT 1 FROM json_each({v}) "
                f"AS e WHERE {pred(elem)}) ELSE FALSE END)"
            )

        return _Val(f"({t} IS NOT NULL)", f"COALESCE({t} = 'null', FALSE)", num, text, elems)

    # PostgreSQL: a value is a jsonb expression.
    def _pg_val(self, x: str) -> _Val:
        t = f"jsonb_typeof({x})"
        inf, ninf = self.param(_INF), self.param(_NINF)

        def num_of(node: str) -> str:
            return (
                f"(CASE jsonb_typeof({node}) WHEN 'number' THEN CAST({node} AS numeric) "
                f"WHEN 'boolean' THEN (CASE WHEN {node} = CAST('true' AS jsonb) THEN 1 ELSE 0 END) "
                f"WHEN 'object' THEN (CASE WHEN {node} = CAST({inf} AS jsonb) "
                f"THEN CAST('Infinity' AS numeric) WHEN {node} = CAST({ninf} AS jsonb) "
                f"THEN CAST('-Infinity' AS numeric) END) END)"
            )

        def text_of(node: str) -> str:
            return f"(CASE WHEN jsonb_typeof({node}) = 'string' THEN {node} #>> '{{}}' END)"

        def elems(pred: Callable[[_Val], str]) -> str:
            elem = _Val(
                "TRUE",
                "COALESCE(jsonb_typeof(e.x) = 'null', FALSE)",
                num_of("e.x"),
                text_of("e.x"),
            )
            return (
                f"(CASE WHEN {t} = 'array' THEN EXISTS (SELECT 1 FROM jsonb_array_elements({x}) "
                f"AS e(x) WHERE {pred(elem)}) ELSE FALSE END)"
            )

        return _Val(
            f"({x} IS NOT NULL)",
            f"COALESCE({t} = 'null', FALSE)",
            num_of(x),
            text_of(x),
            elems,
        )

    def _pg_dotted(self, d: str, key: str) -> str:
        parts = key.split(".")
        for part in parts:
            if part.isdigit() and not part.isascii():
                raise Untranslatable("non-ASCII digits")
            # PostgreSQL reads "-1", "+1", " 1" as list indexes where Python does not
            if not part.isdigit() and re.fullmatch(r"\s*[+-]?\s*\d+\s*", part):
                raise Untranslatable("index-like key")
            if part.isdigit() and len(part) > 1 and part.startswith("0"):
                raise Untranslatable("index with leading zeros")
        if "\x00" in key:
            raise Untranslatable("NUL in a key")
        x0 = self._pg_slot(d, "." + key, lambda: f"({d} #> CAST({self.param(parts)} AS text[]))")
        return (
            f"(CASE WHEN jsonb_typeof({x0}) = 'object' "
            f"AND {x0} = jsonb_build_object('value', {x0} -> 'value') "
            f"THEN {x0} -> 'value' ELSE {x0} END)"
        )

    def json_root(self, column: str) -> _Val:
        d = self.doc(column)
        if self.pg:
            return self._pg_val(self._pg_slot(d, "$", lambda: d))
        return self._sq_val(*self._sq_slot(d, "$", lambda: self.param("$")))

    def json_field(self, column: str, key: str, *, direct: bool) -> _Val:
        d = self.doc(column)
        if self.pg:
            if not direct:
                return self._pg_val(self._pg_dotted(d, key))
            if "\x00" in key:
                raise Untranslatable("NUL in a key")
            direct_x = self._pg_slot(
                d, "=" + key, lambda: f"({d} -> CAST({self.param(key)} AS text))"
            )
            if "." not in key:
                return self._pg_val(direct_x)
            return self._pg_val(f"COALESCE({direct_x}, {self._pg_dotted(d, key)})")
        dotted = self._sq_unwrap(*self._sq_slot(d, "." + key, lambda: self._sq_dotted(d, key)))
        if not direct:
            return self._sq_val(*dotted)
        td, vd = self._sq_slot(d, "=" + key, lambda: self.param("$" + self._sq_key(key)))
        if "." not in key:
            return self._sq_val(td, vd)
        return self._sq_val(
            f"(CASE WHEN {td} IS NOT NULL THEN {td} ELSE {dotted[0]} END)",
            f"(CASE WHEN {td} IS NOT NULL THEN {vd} ELSE {dotted[1]} END)",
        )

    # -- filters --------------------------------------------------------------------------------

    def filter(self, spec: Mapping[str, Any] | None) -> str:
        if not spec:
            return "TRUE"
        parts: list[str] = []
        for key, cond in spec.items():
            if key in ("$and", "$or"):
                subs = [self.filter(c) for c in cond]
                if not subs:
                    parts.append("TRUE" if key == "$and" else "FALSE")
                else:
                    parts.append("(" + (" AND " if key == "$and" else " OR ").join(subs) + ")")
            elif key == "$not":
                parts.append(f"(NOT {self.filter(cond)})")
            else:
                parts.append(self.field(key, cond))
        return "(" + " AND ".join(parts) + ")" if len(parts) > 1 else parts[0]

    def field(self, name: str, cond: Any) -> str:
        if not (isinstance(cond, Mapping) and cond and all(str(k).startswith("$") for k in cond)):
            cond = {"$eq": cond}
        val = self.value(name)
        checks = [self.operator(val, op, arg) for op, arg in cond.items()]
        return "(" + " AND ".join(checks) + ")" if len(checks) > 1 else checks[0]

    def operator(self, val: _Val, op: str, arg: Any) -> str:
        if op == "$eq":
            return self.eq_any(val, [arg])
        if op == "$ne":
            return f"(NOT {self.eq_scalars(val, [arg])})"
        if op in ("$lt", "$lte", "$gt", "$gte"):
            return self.ordered(val, {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}[op], arg)
        if op in ("$in", "$nin"):
            found = self.eq_any(val, list(arg))
            return found if op == "$in" else f"(NOT {found})"
        if op == "$exists":
            if bool(arg):
                return val.present
            return f"(NOT {val.present})"
        if op == "$regex":
            return self.regex(val, str(arg))
        raise Untranslatable(op)  # compile_filter has refused it already

    def eq_scalars(self, val: _Val, wanted: Sequence[Any]) -> str:
        """``val`` equals one of ``wanted`` (scalars), without looking into lists."""
        nums: list[str] = []
        texts: list[str] = []
        parts: list[str] = []
        for w in wanted:
            if w is None:
                if val.is_null not in parts:
                    parts.append(val.is_null)
            elif isinstance(w, bool | int | float):
                nums.append(self.num_param(w))
            elif isinstance(w, str):
                texts.append(self.text_param(w))
            else:
                raise Untranslatable("list or dict argument")
        if nums and val.num is not None:
            parts.append(f"COALESCE({val.num} IN ({', '.join(nums)}), FALSE)")
        if texts and val.text is not None:
            parts.append(f"COALESCE({self.collate(val.text)} IN ({', '.join(texts)}), FALSE)")
        if not parts:
            return "FALSE"
        return "(" + " OR ".join(parts) + ")" if len(parts) > 1 else parts[0]

    def eq_any(self, val: _Val, wanted: Sequence[Any]) -> str:
        """Python's ``v == a`` for some ``a`` in ``wanted``, a list ``v`` meaning ``a in v``."""
        scalar = self.eq_scalars(val, wanted)
        if val.elems is None or not wanted:
            return scalar
        return f"({scalar} OR {val.elems(lambda e: self.eq_scalars(e, wanted))})"

    def ordered(self, val: _Val, op: str, arg: Any) -> str:
        if arg is None:
            return "FALSE"
        if isinstance(arg, bool | int | float):
            if val.num is None:
                return "FALSE"
            return f"COALESCE({val.num} {op} {self.num_param(arg)}, FALSE)"
        if isinstance(arg, str):
            if val.text is None:
                return "FALSE"
            return f"COALESCE({self.collate(val.text)} {op} {self.text_param(arg)}, FALSE)"
        raise Untranslatable("list or dict argument")

    def regex(self, val: _Val, pattern: str) -> str:
        if val.text is None:
            return "FALSE"
        if self.pg:
            translated = pg_regex(pattern)
            if translated is None:
                raise Untranslatable("regex")
            return f"COALESCE({self.collate(val.text)} ~ {self.text_param(translated)}, FALSE)"
        return f"COALESCE({REGEXP_FUNCTION}({self.param(pattern)}, {val.text}) = 1, FALSE)"

    # -- order ----------------------------------------------------------------------------------

    def order(self, sort: str | None) -> list[str]:
        tail = [f"{self.col('created_at')} DESC", f"{self.col('pk')} DESC"]
        if not sort:
            return tail
        descending = sort.startswith("-")
        val = self.value(sort.lstrip("+-"))
        direction = "DESC" if descending else "ASC"
        num, text = val.num, val.text
        if num is not None and text is not None:
            groups = (1, 0) if descending else (0, 1)
            group = (
                f"(CASE WHEN {num} IS NOT NULL THEN {groups[0]} "
                f"WHEN {text} IS NOT NULL THEN {groups[1]} ELSE 2 END)"
            )
            keys = [f"{group} ASC", f"{num} {direction}", f"{self.collate(text)} {direction}"]
        elif num is not None:
            keys = [f"(CASE WHEN {num} IS NOT NULL THEN 0 ELSE 1 END) ASC", f"{num} {direction}"]
        elif text is not None:
            keys = [
                f"(CASE WHEN {text} IS NOT NULL THEN 0 ELSE 1 END) ASC",
                f"{self.collate(text)} {direction}",
            ]
        else:
            keys = []
        return keys + tail


def build(postgresql: bool, spec: Mapping[str, Any] | None, sort: str | None) -> Plan:
    """Translate a validated filter and sort key; raises :class:`Untranslatable`."""
    compiler = _Compiler(postgresql)
    where = compiler.filter(spec)
    order = compiler.order(sort)
    return Plan(where, order, compiler.params, compiler.columns)


# -- PostgreSQL regular expressions ---------------------------------------------------------------

_PG_SAFE_ESCAPES = set(".^$*+?()[]{}|\\/-")


def pg_regex(pattern: str) -> str | None:
    """``pattern`` (Python ``re``) as a PostgreSQL ARE that matches the same strings, or None
    when the two could differ. Handles literals, ``. ^ $ * + ? | ( )``, ``{m,n}`` bounds,
    bracket sets of literals and ranges and escaped punctuation; ``.`` becomes ``[^\\n]`` and
    ``$`` becomes ``\\n?$`` (Python's ``$`` also matches before a final newline)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    last = ""  # what the previous piece was: "", "(", "|", "^", "$", "quant", "lazy", "atom"
    if "\x00" in pattern:
        return None
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                return None
            nxt = pattern[i + 1]
            if nxt in _PG_SAFE_ESCAPES:
                out.append("\\" + nxt)
            elif nxt == "n":
                out.append("\\n")
            elif nxt == "t":
                out.append("\\t")
            else:
                return None
            i += 2
        elif c == "[":
            j = i + 1
            body: list[str] = []
            if j < n and pattern[j] == "^":
                body.append("^")
                j += 1
            first = True
            while j < n and (pattern[j] != "]" or first):
                ch = pattern[j]
                if ch == "[" or (ch == "\\" and (j + 1 >= n or pattern[j + 1] not in "\\]-^[")):
                    return None
                if ch == "\\":
                    body.append("\\" + pattern[j + 1])
                    j += 2
                elif ch == "]":  # a leading ] is a literal in both
                    body.append("\\]")
                    j += 1
                else:
                    body.append(ch)
                    j += 1
                first = False
            if j >= n or not body or body == ["^"]:
                return None
            out.append("[" + "".join(body) + "]")
            i = j + 1
        elif c == "{":
            m = re.match(r"\{(\d+)(,(\d*))?\}", pattern[i:])
            if not m or last in ("", "(", "|", "^", "$", "quant", "lazy"):
                return None
            if int(m.group(1)) > 255 or (m.group(3) and int(m.group(3)) > 255):
                return None  # PostgreSQL's bound limit
            out.append(m.group(0))
            i += len(m.group(0))
            last = "quant"
            continue
        elif c == "(":
            if pattern.startswith("(?", i):
                if not pattern.startswith("(?:", i):
                    return None
                out.append("(?:")
                i += 3
            else:
                out.append("(")
                i += 1
            if i < n and pattern[i] in ")|":
                return None
            last = "("
            continue
        elif c == "|":
            if last in ("", "(", "|") or i + 1 >= n or pattern[i + 1] in ")|":
                return None
            out.append("|")
            i += 1
            last = "|"
            continue
        elif c == ".":
            out.append("[^\\n]")
            i += 1
        elif c == "$":
            out.append("\\n?$")
            i += 1
            last = "$"
            continue
        elif c in "*+?":
            if last == "quant" and c == "?" and out[-1] != "?":  # lazy: a*? a+? a?? a{m,n}?
                out.append("?")
                i += 1
                last = "lazy"
                continue
            if last in ("", "(", "|", "^", "$", "quant", "lazy"):
                return None
            out.append(c)
            i += 1
            last = "quant"
            continue
        elif c == "^":
            out.append("^")
            i += 1
            last = "^"
            continue
        elif c == "}":
            return None
        else:
            out.append(c)
            i += 1
        last = "atom"
    return "".join(out)
