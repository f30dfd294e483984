"""Inputs past runyard's limits (runyard/limits.py, docs/store.md#limits) are refused where they
enter, by name: in the SDK with a named error before anything is journaled, at the server with a
422 naming the field; and data stored before the edges refused it cannot break a reader."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import runyard
from runyard.limits import MAX_DEPTH, MAX_FILTER_DEPTH, MAX_KEYS_PER_ROW, MAX_STRING_BYTES
from runyard.query import QueryError, compile_filter, parse_expression
from runyard.sdk.config import ConfigError
from runyard.store.base import JournalBatch, RunQuery
from runyard.store.sql import SQLStore
from tests.serverproc import ServerProc

CLI = [sys.executable, "-m", "runyard"]


def deep(levels: int, leaf: Any = 1) -> Any:
    """``levels`` nested dicts ``{"a": {"a": ... leaf}}``."""
    out = leaf
    for _ in range(levels):
        out = {"a": out}
    return out


# -- the SDK -------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 300, 10_000])
def test_a_config_nested_too_deep_is_a_named_error(levels: int, root: Path) -> None:
    with pytest.raises(ConfigError, match=rf"'a\.a\.a.*' is nested more than {MAX_DEPTH} levels"):
        runyard.init(project="deep", config=deep(levels))
    assert runyard.run is None  # nothing started, nothing journaled
    assert not list((root / "journal").glob("*.journal")) if (root / "journal").exists() else True


def test_config_update_and_summary_past_the_depth_limit(root: Path) -> None:
    run = runyard.init(project="deep", config=deep(MAX_DEPTH))  # exactly the limit: fine
    with pytest.raises(ConfigError, match=r"'nested\.a\.a.*' is nested more than 64"):
        run.config.update({"nested": deep(MAX_DEPTH)})
    with pytest.raises(ConfigError, match="nested more than 64"):
        run.config.section = deep(10_000)
    with pytest.raises(ConfigError, match=r"'best\.a\.a.*' is nested more than 64"):
        run.summary["best"] = deep(MAX_DEPTH)
    run.summary["fine"] = deep(MAX_DEPTH - 1)  # under the summary document: 64 levels
    run.log({"x": 1})
    run.finish()
    stored = runyard.Api(dir=root).run(f"deep/{run.id}")
    assert stored.config == deep(MAX_DEPTH) and stored.summary["fine"] == deep(MAX_DEPTH - 1)
    assert "section" not in stored.config and "best" not in stored.summary


@pytest.mark.parametrize(
    ("tags", "error", "message"),
    [
        (["ok", "a\x00b"], ValueError, r"tags\[1\] 'a\\x00b' contains a NUL"),
        (["ok", 3], TypeError, r"tags\[1\] is a int"),
        ("one-string", TypeError, "a list of strings"),
    ],
)
def test_bad_tags_are_refused_at_init(tags: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        runyard.init(project="t", tags=tags)


def test_a_name_the_server_would_refuse_is_refused_at_init() -> None:
    with pytest.raises(ValueError, match=r"name 'xxx.*longer than 256"):
        runyard.init(project="t", name="x" * 257)
    with pytest.raises(ValueError, match=r"group .*NUL"):
        runyard.init(project="t", group="a\x00")


# -- filters -------------------------------------------------------------------------------------


def test_filters_nested_too_deep_are_query_errors() -> None:
    nested: dict[str, Any] = {"state": "x"}
    for _ in range(10_000):
        nested = {"$not": nested}
    with pytest.raises(QueryError, match=f"nested more than {MAX_FILTER_DEPTH} levels"):
        compile_filter(nested)
    wide_and: dict[str, Any] = {"state": "x"}
    for _ in range(MAX_FILTER_DEPTH + 1):
        wide_and = {"$and": [wide_and, {"name": "n"}]}
    with pytest.raises(QueryError, match="nested more than"):
        compile_filter(wide_and)
    for text in ("(" * 600 + "state = x" + ")" * 600, "not " * 2000 + "state = x"):
        with pytest.raises(QueryError, match="nested more than 64 levels"):
            parse_expression(text)


# -- the server's edge ----------------------------------------------------------------------------


@pytest.fixture
def server(shared_server: ServerProc) -> ServerProc:
    return shared_server


def _cli(*args: str) -> tuple[int, str]:
    """``runyard ARGS`` in this process: exit code and output (stdout and stderr)."""
    from click.testing import CliRunner

    from runyard.cli import main

    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _header(run_id: str, **extra: Any) -> dict[str, Any]:
    return {"entity": "e", "project": "edge", "run_id": run_id, "start_time": 1.7e9, **extra}


def _post(server: ServerProc, journal: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(f"{server.api}/journals/{journal}/batches", content=content, timeout=30)


def _json_deep(levels: int) -> bytes:
    """A batch whose header.config is ``levels`` deep, built as text (past orjson's limit)."""
    return (
        b'{"header": '
        + orjson.dumps(_header("d10k"))[:-1]
        + (b', "config": ' + b'{"a": ' * levels + b"1" + b"}" * levels + b"}, " + b'"records": []}')
    )


ROW = [1, "row", {"_step": 0, "_runtime": 1.0, "_timestamp": 1.7e9, "x": 1.0}]
EDGE_CASES: list[tuple[str, Any, str]] = [
    ("cfg300", b"", "header.config is nested more than 64"),  # built below: too deep to encode
    ("cfg1000", b"", "header.config is nested more than 64"),
    ("cfg10k", b"", "not valid JSON"),
    (
        "cfgrec",
        {"header": _header("cr"), "records": [[1, "config", deep(MAX_DEPTH + 1)]]},
        "record 1: config is nested more than 64 levels deep (at 'a.a.a",
    ),
    (
        "summary",
        {"header": _header("s"), "records": [ROW], "summary": {"k": deep(MAX_DEPTH)}},
        "summary is nested more than 64",
    ),
    (
        "negstep",
        {"header": _header("neg"), "records": [[1, "row", {"_step": -1, "x": 1}]]},
        "row._step must be an integer from 0",
    ),
    ("emptyid", {"header": _header(""), "records": []}, "header.run_id must not be empty"),
    ("badid", {"header": _header("-x"), "records": []}, "header.run_id '-x' is not a run id"),
    ("tagnul", {"header": _header("tn", tags=["a\x00"]), "records": []}, "header.tags"),
    (
        "tagrec",
        {"header": _header("tr"), "records": [[1, "tags", ["ok", "a\x00"]]]},
        "record 1: tags must be a list of strings without NUL",
    ),
    (
        "start",
        {"header": _header("st", start_time=1e308), "records": []},
        "header.start_time is 1e+308, out of range",
    ),
    (
        "rowtime",
        {"header": _header("rt"), "records": [[1, "row", {"_step": 0, "_timestamp": 1e308}]]},
        "row._timestamp is 1e+308, out of range",
    ),
    (
        "finish",
        {"header": _header("fi"), "records": [[1, "finish", {"state": "finished", "time": -5}]]},
        "finish.time is -5, out of range",
    ),
    (
        "beat",
        {"header": _header("hb"), "records": [], "heartbeat_at": 1e300},
        "heartbeat_at is 1e+300, out of range",
    ),
    (
        "longkey",
        {"header": _header("lk"), "records": [[1, "row", {"_step": 0, "k" * 513: 1}]]},
        "is longer than 512 characters",
    ),
    (
        "manykeys",
        {
            "header": _header("mk"),
            "records": [
                [1, "row", {"_step": 0, **{f"k{i}": i for i in range(MAX_KEYS_PER_ROW + 1)}}]
            ],
        },
        f"more than the {MAX_KEYS_PER_ROW} a row may hold",
    ),
    (
        "bigstring",
        {
            "header": _header("bs"),
            "records": [[1, "row", {"_step": 0, "t": "é" * MAX_STRING_BYTES}]],
        },
        f"more than {MAX_STRING_BYTES} bytes",
    ),
]


def test_the_server_refuses_inputs_past_the_limits_by_name(server: ServerProc) -> None:
    for name, body, expected in EDGE_CASES:
        if name == "cfg300":
            body = _json_deep(300)
        elif name == "cfg1000":
            body = _json_deep(1000)
        elif name == "cfg10k":
            body = _json_deep(10_000)
        response = _post(server, f"edge-{name}", body)
        assert response.status_code == 422, (name, response.status_code, response.text[:300])
        message = response.json()["error"]["message"]
        assert expected in message, (name, message)
    # nothing of them was stored, and the server still answers
    runs = httpx.get(f"{server.api}/runs", params={"project": "edge"}, timeout=30).json()
    assert runs["total"] == 0


def test_deep_filters_over_http_are_422_and_the_cli_says_so(server: ServerProc) -> None:
    for text in ("(" * 600 + "state = x" + ")" * 600, "not " * 2000 + "state = x"):
        response = httpx.get(f"{server.api}/runs", params={"filter": text}, timeout=30)
        assert response.status_code == 422, response.text[:200]
        assert "nested more than 64" in response.json()["error"]["message"]
    body = '{"state": "x"}'
    for _ in range(500):
        body = '{"$not": ' + body + "}"
    response = httpx.get(f"{server.api}/runs", params={"filter": body}, timeout=30)
    assert response.status_code == 422 and "nested more than" in response.text
    code, out = _cli("runs", "ls", "--store", server.url, "-f", "(" * 600 + "name = x" + ")" * 600)
    assert code != 0 and "Traceback" not in out, out[-2000:]
    assert "nested more than 64 levels" in " ".join(out.split())


def test_bad_data_stored_before_the_edges_refused_it_cannot_break_listing(
    server: ServerProc,
) -> None:
    """A run written straight into the store with a NUL tag and a start time of 1e308 (what
    the server accepted before): listing, filtering on tags and `runyard runs ls` still work."""
    store = SQLStore(server.store_url)
    header = _header("legacy1", start_time=1e308, tags=["ok", "bad\x00tag"], project="legacy")
    store.apply(JournalBatch("legacy-journal", header, [(1, "run", header)], {}, []))
    store.close()
    for params in ({"project": "legacy"}, {"filter": 'tags in ["ok"]'}, {}):
        response = httpx.get(f"{server.api}/runs", params=params, timeout=30)
        assert response.status_code == 200, (params, response.text[:300])
    code, out = _cli("runs", "ls", "--store", server.url, "legacy")
    assert code == 0 and "Traceback" not in out, out[-2000:]
    assert "legacy1" in out and "not a date" in out


def test_a_stored_nul_tag_does_not_break_tag_filters_on_postgresql() -> None:
    from tests import pg

    with pg.fresh_schema() as url:
        store = SQLStore(url)
        try:
            for run_id, tags in (("nul1", ["ok", "bad\x00tag"]), ("plain1", ["ok"])):
                header = _header(run_id, tags=tags)
                # PostgreSQL text cannot hold U+0000 either; JSON keeps it escaped (\\u0000).
                store.apply(JournalBatch(f"j-{run_id}", header, [(1, "run", header)], {}, []))
            runs, total = store.query_runs("e", "edge", {"tags": {"$in": ["ok"]}})
            assert total == 2 and {r.run_id for r in runs} == {"nul1", "plain1"}
            assert store.list_runs(RunQuery(project="edge"))
        finally:
            store.close()
