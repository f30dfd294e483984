"""The W&B door's GraphQL engine and wire conversions, in process (no client, no server)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from runyard.compat.wandb import convert
from runyard.compat.wandb.graphql import (
    Field,
    GraphQLFieldError,
    Resolvers,
    execute,
    parse_request,
)

R: Resolvers[dict[str, Any]] = Resolvers()


@R.field("project")
def _project(ctx: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    ctx.setdefault("calls", []).append(("project", args))
    return {
        "id": "P1",
        "name": args["name"],
        "entity": {"name": args.get("entityName") or "me"},
        "run": Field(lambda a: {"name": a["name"], "state": "running", "tags": ["x"]}),
        "expensive": Field(lambda a: ctx.setdefault("expensive", True)),
        "broken": Field(lambda a: (_ for _ in ()).throw(GraphQLFieldError("no such thing"))),
    }


@R.field("explode")
def _explode(ctx: dict[str, Any], args: dict[str, Any]) -> Any:
    raise RuntimeError("kaboom")


def run(
    query: str,
    variables: dict[str, Any] | None = None,
    name: str | None = None,
    ctx: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = {"query": query, "variables": variables, "operationName": name}
    return execute(parse_request(body), R, ctx if ctx is not None else {})


def test_projection_follows_the_query_aliases_fragments_and_unknown_fields() -> None:
    ctx: dict[str, Any] = {}
    out = run(
        """
        query Q($p: String!, $r: String) {
          proj: project(name: $p, entityName: "team") {
            id
            ...Names
            entity { name unknownField }
            r1: run(name: $r) { name state }
            r2: run(name: "other") { ... on Run { name tags } }
            notServed { deep }
          }
        }
        fragment Names on Project { name }
        """,
        {"p": "demo", "r": "abc"},
        ctx=ctx,
    )
    assert "errors" not in out
    assert out["data"] == {
        "proj": {
            "id": "P1",
            "name": "demo",
            "entity": {"name": "team", "unknownField": None},
            "r1": {"name": "abc", "state": "running"},
            "r2": {"name": "other", "tags": ["x"]},
            "notServed": None,
        }
    }
    assert "expensive" not in ctx  # a Field the query does not select is never computed


def test_failures_are_graphql_errors_never_exceptions() -> None:
    out = run('mutation M { explode project(name: "p") { broken { x } name } nope }')
    assert out["data"]["explode"] is None
    assert out["data"]["project"] == {"broken": None, "name": "p"}
    assert out["data"]["nope"] is None
    messages = {tuple(e["path"]): e["message"] for e in out["errors"]}
    assert "RuntimeError: kaboom" in messages[("explode",)]
    assert messages[("project", "broken")] == "no such thing"
    assert "does not serve the W&B GraphQL field 'nope'" in messages[("nope",)]

    bad = run("query { project(name: ")
    assert bad["data"] is None and "invalid GraphQL query" in bad["errors"][0]["message"]
    two = run('query A { project(name: "a") { name } } query B { explode }')
    assert "name one with operationName" in two["errors"][0]["message"]
    chosen = run('query A { project(name: "a") { name } } query B { explode }', name="A")
    assert chosen == {"data": {"project": {"name": "a"}}}


def test_variable_defaults_and_missing_variables() -> None:
    out = run(
        'query Q($p: String = "dflt", $e: String) { project(name: $p, entityName: $e) '
        "{ name entity { name } } }"
    )
    assert out["data"]["project"] == {"name": "dflt", "entity": {"name": "me"}}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2026-11-28T06:00:35.558008 hello from stdout", ("stdout", "hello from stdout")),
        ("ERROR 2026-11-28T06:00:35.517969 bad thing", ("stderr", "bad thing")),
        ("ERROR 2026-11-28T06:00:35.517969 [rank-1] labelled", ("stderr", "[rank-1] labelled")),
        (
            '{"level":"error","ts":"2026-11-28T06:00:35.5","content":"json form"}',
            ("stderr", "json form"),
        ),
        ("no timestamp at all", ("stdout", "no timestamp at all")),
    ],
)
def test_console_lines(line: str, expected: tuple[str, str]) -> None:
    stream, ts, text = convert.console_line(line, default_time=123.0)
    assert (stream, text) == expected
    assert ts > 1.7e9 or (ts == 123.0 and "timestamp" in line)


def test_history_rows_become_native_rows_and_bad_values_are_left_out() -> None:
    dropped = convert.Dropped()
    row = convert.history_row(
        '{"_step": 3, "_runtime": 1.5, "_timestamp": 1.7e9, "a": {"b": 1, "c": {"d": NaN}},'
        ' "s": "x\\u0000y", "inf": Infinity, "lst": [1, 2], "' + "k" * 600 + '": 1,'
        ' "img": {"_type": "image-file", "path": "media/x.png"}, "_wandb": {"x": 1}}',
        dropped,
    )
    assert row is not None
    assert row["_step"] == 3 and row["a/b"] == 1
    assert row["a/c/d"] == {"__f__": "nan"} and row["inf"] == {"__f__": "inf"}
    assert row["s"] == "x\ufffdy"
    # lists and media references are kept as W&B logs them (runyard stores W&B's media format)
    assert row["lst"] == [1, 2] and row["img"] == {"_type": "image-file", "path": "media/x.png"}
    assert "_wandb" not in row
    assert not any(k.startswith("kkk") for k in row)
    assert len(dropped.items) == 1
    assert convert.history_row('{"_step": "zero"}', dropped) is None
    assert convert.history_row("not json", dropped) is None


def test_config_and_summary_forms() -> None:
    config, internal = convert.config_from_wandb(
        '{"lr": {"value": 0.1, "desc": null}, "opt": {"value": {"name": "adam"}},'
        ' "_wandb": {"value": {"cli_version": "0.31.0", "t": {}}}}'
    )
    assert config == {"lr": 0.1, "opt": {"name": "adam"}}
    assert internal == {"cli_version": "0.31.0", "t": {}}
    back = convert.loads(convert.config_to_wandb(config, internal))
    assert back["lr"]["value"] == 0.1 and back["_wandb"]["value"]["cli_version"] == "0.31.0"

    dropped = convert.Dropped()
    summary, runtime = convert.summary_doc(
        {
            "loss": {"min": 0.1, "max": 2.0},
            "val": {"acc": 0.5},
            "_wandb": {"runtime": 7},
            "x": math.inf,
        },
        dropped,
    )
    assert summary == {"loss": {"min": 0.1, "max": 2.0}, "val/acc": 0.5, "x": {"__f__": "inf"}}
    assert runtime == 7.0


def test_include_and_skip_directives() -> None:
    out = run(
        'query Q($yes: Boolean!, $no: Boolean!) { project(name: "p") { id @include(if: $no) '
        "name @include(if: $yes) entity @skip(if: $yes) { name } } }",
        {"yes": True, "no": False},
    )
    assert out["data"]["project"] == {"name": "p"}


def test_metric_definitions_from_the_clients_config_block() -> None:
    encoded = [
        {"1": "trainer/global_step", "6": [3], "7": []},
        {"2": "*", "5": 1, "6": [1]},
        {"1": "val/loss", "5": 1, "7": [1, 4], "8": 1},
        {"1": "secret", "6": {"2": True}},
    ]
    assert convert.metric_defs_from_wandb(encoded) == [
        {
            "name": "trainer/global_step",
            "step_metric": None,
            "summary": [],
            "goal": None,
            "hidden": False,
        },
        {
            "name": "*",
            "step_metric": "trainer/global_step",
            "summary": [],
            "goal": None,
            "hidden": False,
        },
        {
            "name": "val/loss",
            "step_metric": "trainer/global_step",
            "summary": ["min", "best"],
            "goal": "minimize",
            "hidden": False,
        },
        {"name": "secret", "step_metric": None, "summary": [], "goal": None, "hidden": True},
    ]
