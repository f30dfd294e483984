"""Store.query_runs: filters and sort keys in SQL (store/sql_query.py) give exactly what the
Python path (runyard.query.compile_filter + sort_runs) gives, on SQLite and PostgreSQL; the
filter language reads the same in Python and in the dashboard (web/src/filter.ts)."""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import runyard.store.sql as sql_module
from runyard._json import dumps_doc
from runyard.query import QueryError, parse_expression, select_runs
from runyard.store import schema as S
from runyard.store import sql_query
from runyard.store.base import RunQuery, RunRecord
from runyard.store.sql import SQLStore

REPO = Path(__file__).resolve().parent.parent
NAN, INF = math.nan, math.inf


def insert_runs(store: SQLStore, runs: list[dict[str, Any]]) -> None:
    """Rows straight into ``projects``/``runs``, documents encoded as the write path does."""
    with store.engine.begin() as conn:
        projects: dict[tuple[str, str], int] = {}
        for r in runs:
            key = (r.get("entity", "e"), r.get("project", "p"))
            if key not in projects:
                found = conn.execute(
                    sa.select(S.projects.c.id).where(
                        S.projects.c.entity == key[0], S.projects.c.name == key[1]
                    )
                ).scalar()
                if found is None:
                    found = conn.execute(
                        S.projects.insert().values(entity=key[0], name=key[1], created_at=0.0)
                    ).inserted_primary_key[0]
                projects[key] = int(found)
        conn.execute(
            S.runs.insert(),
            [
                {
                    "project_id": projects[(r.get("entity", "e"), r.get("project", "p"))],
                    "run_id": r["id"],
                    "name": r.get("name", r["id"]),
                    "group_name": r.get("group"),
                    "job_type": r.get("job_type"),
                    "tags": dumps_doc(r.get("tags", [])),
                    "notes": r.get("notes"),
                    "state": r.get("state", "finished"),
                    "config": dumps_doc(r.get("config", {})),
                    "summary": dumps_doc(r.get("summary", {})),
                    "sweep_id": r.get("sweep_id"),
                    "host": r.get("host"),
                    "created_at": r.get("created_at", 1000.0),
                    "updated_at": 0.0,
                    "heartbeat_at": 0.0,
                    "runtime": r.get("runtime", 0.0),
                    "last_step": r.get("last_step", -1),
                }
                for r in runs
            ],
        )


def python_path(
    store: SQLStore,
    spec: Mapping[str, Any] | None,
    sort: str | None,
    limit: int | None = None,
    offset: int = 0,
    entity: str | None = "e",
    project: str | None = "p",
) -> tuple[list[str], int]:
    runs = store.list_runs(RunQuery(entity=entity, project=project))
    page, total = select_runs(runs, spec, sort, limit, offset)
    return [r.run_id for r in page], total


def sql_path(
    store: SQLStore,
    spec: Mapping[str, Any] | None,
    sort: str | None,
    limit: int | None = None,
    offset: int = 0,
    entity: str | None = "e",
    project: str | None = "p",
) -> tuple[list[str], int]:
    # Must translate: a fallback would make the comparison with the Python path vacuous.
    sql_query.build(not store.is_sqlite, spec, sort)
    page, total = store.query_runs(entity, project, spec, sort, limit, offset)
    return [r.run_id for r in page], total


def ids(store: SQLStore, spec: Mapping[str, Any] | None, sort: str | None = "id") -> list[str]:
    """Matching run ids in ``sort`` order, checked against the Python path."""
    found = sql_path(store, spec, sort)
    assert found == python_path(store, spec, sort), spec
    return found[0]


# -- hand-written cases ---------------------------------------------------------------------------

HAND = [
    {
        "id": "a",
        "state": "finished",
        "group": "g1",
        "tags": ["best", "baseline"],
        "config": {"optimizer": {"lr": 0.001, "name": "adam"}, "layers": 8, "seed": {"value": 7}},
        "summary": {"test/accuracy": 0.91, "loss": {"min": 0.1, "max": 0.9}, "flag": True},
        "created_at": 5.0,
        "runtime": 10.0,
    },
    {
        "id": "b",
        "state": "failed",
        "group": None,
        "tags": [],
        "config": {"optimizer": {"lr": 0.01, "name": "sgd"}, "layers": "8", "list": [1, 2]},
        "summary": {"test/accuracy": NAN, "loss": 0.5, "flag": 1},
        "created_at": 4.0,
        "runtime": 20.0,
    },
    {
        "id": "c",
        "state": "finished",
        "group": "g2",
        "tags": ["best"],
        "config": {"optimizer": {"lr": 1}, "layers": None},
        "summary": {"test/accuracy": INF, "loss": {"min": -INF}, "a.b": 1, "a": {"b": 2}},
        "created_at": 4.0,
        "runtime": 5.0,
    },
    {
        "id": "d",
        "state": "running",
        "group": "g1",
        "tags": ["x"],
        "config": {"optimizer": "adam", "seed": {"value": 7, "other": 1}},
        "summary": {"test/accuracy": "n/a", "a": {"b": 3}},
        "created_at": 3.0,
        "runtime": 0.0,
    },
]


@pytest.fixture
def hand(store: SQLStore) -> SQLStore:
    insert_runs(store, HAND)
    return store


def test_operators_on_every_kind_of_field(hand: SQLStore) -> None:
    s = hand
    # builtins
    assert ids(s, {"state": "finished"}) == ["a", "c"]
    assert ids(s, {"state": {"$ne": "finished"}}) == ["b", "d"]
    assert ids(s, {"state": {"$in": ["failed", "running"]}}) == ["b", "d"]
    assert ids(s, {"group": None}) == ["b"]
    assert ids(s, {"group": {"$exists": False}}) == []
    assert ids(s, {"group": {"$gte": "g2"}}) == ["c"]
    assert ids(s, {"created_at": {"$lt": 4.5}}) == ["b", "c", "d"]
    assert ids(s, {"runtime": {"$gt": 5, "$lte": 20}}) == ["a", "b"]
    assert ids(s, {"name": {"$regex": "^[ab]$"}}) == ["a", "b"]
    # tags: membership
    assert ids(s, {"tags": "best"}) == ["a", "c"]
    assert ids(s, {"tags": {"$in": ["baseline", "x"]}}) == ["a", "d"]
    assert ids(s, {"tags": {"$nin": ["best"]}}) == ["b", "d"]
    assert ids(s, {"tags": {"$ne": "best"}}) == ["a", "b", "c", "d"]  # v != a: a list is never
    # nested config, numbers vs strings, W&B's {"value": x}
    assert ids(s, {"config.optimizer.lr": {"$lt": 0.05}}) == ["a", "b"]
    assert ids(s, {"config.optimizer.lr": 1}) == ["c"]
    assert ids(s, {"config.optimizer.name": "adam"}) == ["a"]
    assert ids(s, {"config.optimizer": "adam"}) == ["d"]
    assert ids(s, {"config.layers": 8}) == ["a"]
    assert ids(s, {"config.layers": "8"}) == ["b"]
    assert ids(s, {"config.layers": {"$gt": 1}}) == ["a"]  # "8" does not order against 1
    assert ids(s, {"config.layers": {"$gt": "1"}}) == ["b"]
    assert ids(s, {"config.layers": None}) == ["c"]
    assert ids(s, {"config.layers": {"$exists": True}}) == ["a", "b", "c"]
    assert ids(s, {"config.seed": 7}) == ["a"]  # unwrapped; d's dict has another key
    assert ids(s, {"config.seed.value": 7}) == ["a", "d"]
    assert ids(s, {"config.list": 2}) == ["b"]
    assert ids(s, {"config.list.1": 2}) == ["b"]
    assert ids(s, {"config.list.2": {"$exists": True}}) == []
    # summary: keys with "/" and ".", aggregates, NaN and infinities, booleans
    assert ids(s, {"summary.test/accuracy": {"$gt": 0.9}}) == ["a", "c"]
    assert ids(s, {"summary.test/accuracy": {"$ne": 0.91}}) == ["b", "c", "d"]
    assert ids(s, {"summary.test/accuracy": {"$lte": 0.91}}) == ["a"]  # NaN orders nowhere
    assert ids(s, {"summary.test/accuracy": {"$exists": True}}) == ["a", "b", "c", "d"]
    assert ids(s, {"summary.loss.min": {"$lt": 0}}) == ["c"]
    assert ids(s, {"summary.loss": {"$lt": 1}}) == ["b"]  # an aggregate dict never orders
    assert ids(s, {"summary.a.b": 1}) == ["c"]  # the key "a.b" itself comes first
    assert ids(s, {"summary.a.b": 3}) == ["d"]
    assert ids(s, {"summary_metrics.flag": 1}) == ["a", "b"]  # True == 1
    assert ids(s, {"summary.flag": True}) == ["a", "b"]
    # logic
    assert ids(s, {"$or": [{"group": "g2"}, {"tags": "x"}]}) == ["c", "d"]
    assert ids(s, {"$and": [{"state": "finished"}, {"config.layers": 8}]}) == ["a"]
    assert ids(s, {"$not": {"state": "finished"}, "group": "g1"}) == ["d"]
    assert ids(s, {"$or": []}) == []
    assert ids(s, {"$and": []}) == ["a", "b", "c", "d"]


def test_sort_puts_missing_last_both_ways(hand: SQLStore) -> None:
    s = hand
    # ties keep the default order (newest first; b and c share created_at: later insert first)
    assert ids(s, None, None) == ["a", "c", "b", "d"]
    assert ids(s, None, "config.optimizer.lr") == ["a", "b", "c", "d"]
    assert ids(s, None, "-config.optimizer.lr") == ["c", "b", "a", "d"]
    # numbers, then strings ascending; strings first descending; NaN with the missing
    assert ids(s, None, "summary.test/accuracy") == ["a", "c", "d", "b"]
    assert ids(s, None, "-summary.test/accuracy") == ["d", "c", "a", "b"]
    assert ids(s, None, "summary.loss.min") == ["c", "a", "b", "d"]
    assert ids(s, None, "-summary.loss") == ["b", "a", "c", "d"]
    assert ids(s, None, "group") == ["a", "d", "c", "b"]
    assert ids(s, None, "-group") == ["c", "a", "d", "b"]
    assert ids(s, None, "-runtime") == ["b", "a", "c", "d"]
    assert ids(s, None, "tags") == ["a", "c", "b", "d"]  # lists: all "missing"
    assert ids(s, {"state": "finished"}, "-created_at") == ["a", "c"]


def test_limit_offset_total_and_scope(hand: SQLStore) -> None:
    s = hand
    insert_runs(s, [{"id": "other", "project": "q"}, {"id": "team", "entity": "t"}])
    assert sql_path(s, None, "id", 2, 1) == (["b", "c"], 4)
    assert sql_path(s, None, "id", None, 3) == (["d"], 4)
    assert sql_path(s, None, "id", 10, 10) == ([], 4)
    assert sql_path(s, None, "id", 0, 0) == ([], 4)
    assert sql_path(s, {"state": "finished"}, "-id", 1) == (["c"], 2)
    assert sql_path(s, None, "id", entity=None, project=None)[1] == 6
    assert sql_path(s, None, "id", entity="e", project=None)[1] == 5
    page, total = s.query_runs(None, None, None, "id", entities=["t"])
    assert [r.run_id for r in page] == ["team"] and total == 1
    assert s.query_runs(None, None, None, None, entities=[]) == ([], 0)


def test_only_the_page_is_decoded(hand: SQLStore, monkeypatch: pytest.MonkeyPatch) -> None:
    insert_runs(hand, [{"id": f"r{i}", "config": {"i": i}} for i in range(50)])
    decoded: list[str] = []
    original = sql_module._to_record

    def counting(row: Any) -> RunRecord:
        decoded.append(row["run_id"])
        return original(row)

    monkeypatch.setattr(sql_module, "_to_record", counting)
    page, total = hand.query_runs("e", "p", {"config.i": {"$gte": 10}}, "-config.i", 5, 2)
    assert [r.run_id for r in page] == ["r47", "r46", "r45", "r44", "r43"] and total == 40
    assert sorted(decoded) == sorted(r.run_id for r in page)


def test_untranslatable_filters_take_the_python_path(hand: SQLStore) -> None:
    s = hand
    for spec in (
        {"config.list": [1, 2]},  # list equality
        {"config.optimizer": {"lr": 1}},  # dict equality
        {"summary.test/accuracy": INF},  # non-finite argument
        {"config.x": {"$lt": 2**70}},
    ):
        with pytest.raises(sql_query.Untranslatable):
            sql_query.build(not s.is_sqlite, spec, None)
        page, total = s.query_runs("e", "p", spec, "id")
        assert ([r.run_id for r in page], total) == python_path(s, spec, "id"), spec
    assert [r.run_id for r in s.query_runs("e", "p", {"config.list": [1, 2]})[0]] == ["b"]
    assert [r.run_id for r in s.query_runs("e", "p", {"summary.test/accuracy": INF})[0]] == ["c"]
    # $regex beyond what PostgreSQL matches the same way: Python there, SQL on SQLite
    spec = {"name": {"$regex": r"\w"}}
    assert s.query_runs("e", "p", spec, "id")[1] == 4


def test_errors_are_the_python_paths(hand: SQLStore) -> None:
    with pytest.raises(QueryError, match="unknown field 'colour'"):
        hand.query_runs("e", "p", {"colour": 1})
    with pytest.raises(QueryError, match=r"unknown operator '\$near'"):
        hand.query_runs("e", "p", {"config.x": {"$near": 1}})
    with pytest.raises(QueryError, match="unknown field 'bogus'"):
        hand.query_runs("e", "p", None, "-bogus")
    with pytest.raises(QueryError, match="not a regular expression"):
        hand.query_runs("e", "p", {"name": {"$regex": "("}})


# -- generated runs: SQL path == Python path ------------------------------------------------------

SCALARS: list[Any] = [0, 1, 2, -1, 0.5, 0.1, -2.5, 1e-3, 10, True, False, None]
SCALARS += ["a", "b", "adam", "sgd", "", "Zeta", "é", "10", "a/b", "n1"]
SPECIAL: list[Any] = [NAN, INF, -INF, [1, 2], ["a", "b"], [], [True], [None, "a"], {"value": 3}]
SPECIAL += [{"value": "a"}, {"min": 0.1, "max": 0.9}, {"value": 1, "x": 2}, {"b": 1}, {"b": "a"}]
FIELDS = [
    "state", "name", "id", "group", "job_type", "tags", "notes", "sweep", "host",
    "created_at", "runtime", "last_step", "entity", "project",
    "config.lr", "config.opt.name", "config.opt.lr", "config.model.layers", "config.arr.0",
    "config.arr.1", "config.missing", "config.wrapped", "summary.acc", "summary.test/accuracy",
    "summary.loss", "summary.loss.min", "summary.a.b", "summary_metrics.acc", "summary.x",
]  # fmt: skip
PATTERNS = ["^a", "a", "d$", "^n.*[0-9]$", "b|z", "[a-c]+", "^$", "(?i)A", r"\d", "a.b"]


def _value(rng: random.Random) -> Any:
    if rng.random() < 0.75:
        return rng.choice(SCALARS)
    return rng.choice(SPECIAL)


def _maybe(rng: random.Random, doc: dict[str, Any], key: str, value: Any) -> None:
    if rng.random() < 0.8:
        doc[key] = value


def generated_runs(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        config: dict[str, Any] = {}
        _maybe(rng, config, "lr", _value(rng))
        opt: dict[str, Any] = {}
        _maybe(rng, opt, "name", _value(rng))
        _maybe(rng, opt, "lr", _value(rng))
        _maybe(rng, config, "opt", opt if rng.random() < 0.9 else _value(rng))
        _maybe(rng, config, "model", {"layers": _value(rng)})
        _maybe(rng, config, "arr", [_value(rng) for _ in range(rng.randint(0, 3))])
        _maybe(rng, config, "wrapped", {"value": _value(rng)})
        summary: dict[str, Any] = {}
        _maybe(rng, summary, "acc", _value(rng))
        _maybe(rng, summary, "test/accuracy", _value(rng))
        _maybe(rng, summary, "loss", {"min": _value(rng), "max": _value(rng)})
        _maybe(rng, summary, "a.b", _value(rng))
        _maybe(rng, summary, "a", {"b": _value(rng)})
        _maybe(rng, summary, "x", _value(rng))
        out.append(
            {
                "id": f"r{i:03d}",
                "name": rng.choice(["n1", "n2", "abc", "bad", "zed", f"n{i}"]),
                "state": rng.choice(S.RUN_STATES),
                "group": rng.choice([None, "g1", "g2", "a"]),
                "job_type": rng.choice([None, "train", "eval"]),
                "tags": rng.sample(["best", "baseline", "t", "a"], rng.randint(0, 3)),
                "notes": rng.choice([None, "", "line\nbreak", "abc"]),
                "sweep_id": rng.choice([None, "s1"]),
                "host": rng.choice([None, "h1", "h2"]),
                "created_at": float(rng.randint(0, 40)),  # ties on purpose
                "runtime": rng.choice([0.0, 1.5, 10.0, 2.0]),
                "last_step": rng.randint(-1, 5),
                "config": config,
                "summary": summary,
            }
        )
    return out


def _condition(rng: random.Random) -> dict[str, Any]:
    field = rng.choice(FIELDS)
    op = rng.choice(
        ["$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$exists", "$regex"]
    )
    arg: Any
    if op in ("$in", "$nin"):
        arg = [rng.choice(SCALARS) for _ in range(rng.randint(0, 3))]
    elif op == "$exists":
        arg = rng.random() < 0.5
    elif op == "$regex":
        arg = rng.choice(PATTERNS)
    else:
        arg = rng.choice(SCALARS)
    if field == "state":  # a word that is no state is refused (QueryError): use real ones
        arg = (
            [rng.choice(S.RUN_STATES) if isinstance(a, str) else a for a in arg]
            if isinstance(arg, list)
            else (rng.choice(S.RUN_STATES) if isinstance(arg, str) and op != "$regex" else arg)
        )
    if op == "$eq" and rng.random() < 0.5:
        return {field: arg}
    return {field: {op: arg}}


def _spec(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    roll = rng.random()
    if depth < 2 and roll < 0.15:
        return {"$or": [_spec(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if depth < 2 and roll < 0.25:
        return {"$and": [_spec(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    if depth < 2 and roll < 0.32:
        return {"$not": _spec(rng, depth + 1)}
    spec = _condition(rng)
    if roll > 0.85:
        spec.update(_condition(rng))
    return spec


def test_sql_path_equals_python_path_on_generated_runs(store: SQLStore) -> None:
    insert_runs(store, generated_runs(300))
    insert_runs(store, [{"id": "elsewhere", "project": "q"}, {"id": "r000", "entity": "t"}])
    rng = random.Random(11)
    everything = store.list_runs(RunQuery(entity="e", project="p"))
    translated = 0
    queries = 250
    for _ in range(queries):
        spec = _spec(rng)
        sort = rng.choice([None, *FIELDS]) if rng.random() < 0.8 else None
        if sort and rng.random() < 0.5:
            sort = "-" + sort
        limit = rng.choice([None, 1, 7, 50])
        offset = rng.choice([0, 0, 3, 40])
        try:
            sql_query.build(not store.is_sqlite, spec, sort)
            translated += 1
        except sql_query.Untranslatable:
            pass
        page, total = store.query_runs("e", "p", spec, sort, limit, offset)
        want_page, want_total = select_runs(everything, spec, sort, limit, offset)
        got = ([r.run_id for r in page], total)
        assert got == ([r.run_id for r in want_page], want_total), (spec, sort, limit, offset)
    assert translated >= queries * 0.9
    # every sort key over everything, both directions
    for field in FIELDS:
        for sort in (field, "-" + field):
            assert sql_path(store, None, sort) == python_path(store, None, sort), sort


# -- PostgreSQL regular expressions ---------------------------------------------------------------

REGEX_TEXTS = ["", "a", "abc", "a\n", "a\nb", "A", "ab/cd", "n12", "x.y", "xzy", "]", "-", "é"]
REGEX_PATTERNS = [
    "^a", "a$", "^a$", "b|c", "a.b", "x.y", r"x\.y", "[a-c]+$", "[^a]", "^(ab|n)[0-9]{1,2}$",
    "(?:a|x)", "c?$", "^$", "[]]", "[a-]", r"ab\/cd", "é", "^.$", "a*?", "b{2,}", "a+c",
]  # fmt: skip


def test_pg_regex_translation_matches_python(store: SQLStore) -> None:
    for pattern in (r"\d", r"\w", "(?i)a", "[[:alpha:]]", r"\b", "a{,2}", "(?=a)", r"\1"):
        assert sql_query.pg_regex(pattern) is None, pattern
    if store.is_sqlite:
        return
    with store.engine.connect() as conn:
        for pattern in REGEX_PATTERNS:
            translated = sql_query.pg_regex(pattern)
            assert translated is not None, pattern
            for text in REGEX_TEXTS:
                got = conn.execute(
                    sa.text('SELECT CAST(:t AS text) COLLATE "C" ~ CAST(:p AS text)'),
                    {"t": text, "p": translated},
                ).scalar()
                assert got == (re.search(pattern, text) is not None), (pattern, text)


# -- the filter language: Python and the dashboard agree ------------------------------------------


#: expression → the filter document both parsers must produce (None: both must refuse it)
def _nested_not(n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"state": {"$eq": "x"}}
    for _ in range(n):
        out = {"$not": out}
    return out


FILTER_LANGUAGE: list[tuple[str, Any]] = [
    ("state = finished", {"state": {"$eq": "finished"}}),
    ("state=finished", {"state": {"$eq": "finished"}}),
    ("state == 'finished'", {"state": {"$eq": "finished"}}),
    ("config.lr<0.01", {"config.lr": {"$lt": 0.01}}),
    (
        "config.optimizer.lr < 0.01 and state = finished",
        {"$and": [{"config.optimizer.lr": {"$lt": 0.01}}, {"state": {"$eq": "finished"}}]},
    ),
    (
        "summary.test/accuracy >= 0.9 or tags in [best, baseline]",
        {
            "$or": [
                {"summary.test/accuracy": {"$gte": 0.9}},
                {"tags": {"$in": ["best", "baseline"]}},
            ]
        },
    ),
    (
        "not (state = failed or state = crashed) AND runtime > 60",
        {
            "$and": [
                {"$not": {"$or": [{"state": {"$eq": "failed"}}, {"state": {"$eq": "crashed"}}]}},
                {"runtime": {"$gt": 60}},
            ]
        },
    ),
    ("name ~ '^run-[0-9]+$'", {"name": {"$regex": "^run-[0-9]+$"}}),
    ("name ~ ^run-.*$", {"name": {"$regex": "^run-.*$"}}),
    ("name ~ ^run-[0-9]+$", None),  # [ ] are punctuation: quote such a pattern
    ('name ~ "a b"', {"name": {"$regex": "a b"}}),
    ("group != null", {"group": {"$ne": None}}),
    ("summary.flag = TRUE", {"summary.flag": {"$eq": True}}),
    ("config.x = none", {"config.x": {"$eq": None}}),
    ("config.n >= -1.5e3", {"config.n": {"$gte": -1500.0}}),
    ("config.n <= .5", {"config.n": {"$lte": 0.5}}),
    ("config.n = +7", {"config.n": {"$eq": 7}}),
    ("config.v = 1_000", {"config.v": {"$eq": "1_000"}}),
    ("config.v = nan", {"config.v": {"$eq": "nan"}}),
    ("config.v = '12'", {"config.v": {"$eq": "12"}}),
    ("tags nin [a, 'b c', 3, true]", {"tags": {"$nin": ["a", "b c", 3, True]}}),
    ("tags in []", {"tags": {"$in": []}}),
    ("tags in [a b]", {"tags": {"$in": ["a", "b"]}}),
    (
        "state = a or state = b and host = c",
        {
            "$or": [
                {"state": {"$eq": "a"}},
                {"$and": [{"state": {"$eq": "b"}}, {"host": {"$eq": "c"}}]},
            ]
        },
    ),
    ("((state = x))", {"state": {"$eq": "x"}}),
    ("not not state = x", {"$not": {"$not": {"state": {"$eq": "x"}}}}),
    ("summary_metrics.loss.min < 1", {"summary_metrics.loss.min": {"$lt": 1}}),
    ("config.lr<<1", None),
    ("config.lr <", None),
    ("colour = red", None),
    ("config. = 1", None),
    ("state = finished state = failed", None),
    ("(state = x", None),
    ("state = 'open", None),
    ("state", None),
    ("and", None),
    ("tags in [a", None),
    ("tags in [(]", None),
    ("= 1", None),
    # nesting up to runyard.limits.MAX_FILTER_DEPTH (64), then a parse error, never a crash
    ("(" * 64 + "state = x" + ")" * 64, {"state": {"$eq": "x"}}),
    ("not " * 64 + "state = x", _nested_not(64)),
    ("(" * 65 + "state = x" + ")" * 65, None),
    ("not " * 65 + "state = x", None),
    ("(" * 600 + "state = x" + ")" * 600, None),
    ("not " * 2000 + "state = x", None),
]


def test_filter_language_in_python() -> None:
    for text, expected in FILTER_LANGUAGE:
        if expected is None:
            with pytest.raises(QueryError):
                parse_expression(text)
        else:
            assert parse_expression(text) == expected, text
    assert parse_expression("   ") == {}


_NODE_RUNNER = """
const ts = require(process.argv[1]);
const fs = require("fs");
const src = fs.readFileSync(process.argv[2], "utf8");
const js = ts.transpileModule(src, {
  compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020 },
}).outputText;
const mod = { exports: {} };
new Function("module", "exports", "require", js)(mod, mod.exports, require);
const cases = JSON.parse(fs.readFileSync(0, "utf8"));
console.log(JSON.stringify(cases.map((text) => {
  try { return { ok: mod.exports.parseFilter(text) }; } catch (e) { return { error: String(e.message) }; }
})));
"""


def test_filter_language_in_the_dashboard() -> None:
    node = shutil.which("node")
    typescript = REPO / "web" / "node_modules" / "typescript"
    if node is None or not typescript.is_dir():
        pytest.skip("node and web/node_modules (make web) are needed to run web/src/filter.ts")
    proc = subprocess.run(
        [node, "-e", _NODE_RUNNER, str(typescript), str(REPO / "web" / "src" / "filter.ts")],
        input=json.dumps([text for text, _ in FILTER_LANGUAGE]),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answers = json.loads(proc.stdout)
    for (text, expected), answer in zip(FILTER_LANGUAGE, answers, strict=True):
        if expected is None:
            assert "error" in answer, (text, answer)
        else:
            assert answer.get("ok") == expected, (text, answer)


# -- over HTTP: HTTPStore.query_runs and Api.runs use the server's /runs ---------------------------


def test_http_store_and_api_runs_query_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runyard.api import Api
    from runyard.store import http as http_module
    from runyard.store.http import HTTPStore
    from tests.serverproc import running_server

    url = f"sqlite:///{tmp_path / 'store.db'}"
    local = SQLStore(url)
    insert_runs(local, generated_runs(120))
    monkeypatch.setattr(http_module, "PAGE", 25)  # several pages per call
    cases: list[tuple[dict[str, Any] | None, str | None, int | None, int]] = [
        (None, None, None, 0),
        ({"config.lr": {"$lt": 1}, "state": {"$ne": "crashed"}}, "-summary.test/accuracy", 30, 5),
        (parse_expression("tags in [best, t] or not config.opt.lr >= 0.1"), "config.lr", None, 7),
        ({"summary.acc": INF}, "name", 3, 0),  # a non-finite argument travels as a marker
    ]
    with running_server(url) as server:
        remote = HTTPStore(server.url)
        try:
            for spec, sort, limit, offset in cases:
                want = local.query_runs("e", "p", spec, sort, limit, offset)
                got = remote.query_runs("e", "p", spec, sort, limit, offset)
                assert [r.run_id for r in got[0]] == [r.run_id for r in want[0]], spec
                assert got[1] == want[1]
            assert remote.query_runs("e", "p", None, None, 0)[0] == []
            assert remote.query_runs("e", "p", None, None, 0)[1] == 120
            with pytest.raises(QueryError, match="unknown field"):
                remote.query_runs("e", "p", {"colour": 1})
        finally:
            remote.close()
        api = Api(store=server.url, recover=False)
        spec = {"config.opt.name": {"$in": ["adam", "sgd"]}}
        found = api.runs("e/p", filters=spec, order="-config.opt.lr", limit=10)
        want = local.query_runs("e", "p", spec, "-config.opt.lr", 10)[0]
        assert [r.id for r in found] == [r.run_id for r in want]
    local.close()


def test_queries_see_the_write_path(store: SQLStore) -> None:
    """Runs written by Store.apply, then changed (PostgreSQL's jsonb copies follow)."""
    from runyard.store import JournalBatch

    head = {
        "entity": "e",
        "project": "p",
        "run_id": "w",
        "config": {"optimizer": {"lr": 0.5}},
        "start_time": 1.0,
        "journal_id": "j-w",
    }
    store.apply(JournalBatch("j-w", head, [(1, "run", head)], summary={"val/acc": 0.1}))
    assert ids(store, {"summary.val/acc": {"$lt": 0.2}}) == ["w"]
    change = [(2, "config", {"optimizer": {"lr": 0.01}})]
    store.apply(JournalBatch("j-w", head, change, summary={"val/acc": 0.9}))
    assert ids(store, {"summary.val/acc": {"$lt": 0.2}}) == []
    assert ids(store, {"summary.val/acc": {"$gt": 0.8}, "config.optimizer.lr": 0.01}) == ["w"]
