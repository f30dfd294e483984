"""Property-based API testing (schemathesis 4) against a live server's published OpenAPI document:
whatever the generated request, no endpoint answers a 5xx.

The store is seeded with a run (history, a file) and a sweep whose ids the spec's examples can
hit, and the number of examples per operation is bounded so the whole module stays under a
minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.serverproc import ServerProc, running_server

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 4


def _seed(api: str) -> None:
    with httpx.Client(base_url=api, timeout=30) as http:
        body = {
            "header": {"entity": "e", "project": "p", "run_id": "r1", "name": "seed"},
            "records": [
                [1, "run", {}],
                [2, "row", {"_step": 0, "loss": 1.0}],
                [3, "row", {"_step": 1, "loss": {"__f__": "nan"}}],
                [4, "console", [["stdout", 1.0, "hi"]]],
            ],
            "summary": {"loss": 0.5},
        }
        http.post("/journals/j1/batches", content=orjson.dumps(body)).raise_for_status()
        http.put("/runs/e/p/r1/files/a.txt", content=b"file").raise_for_status()
        config = {
            "program": "train.py",
            "method": "random",
            "metric": {"name": "loss"},
            "parameters": {"lr": {"min": 0.0, "max": 1.0}},
        }
        http.post(
            "/sweeps", json={"sweep_id": "s1", "entity": "e", "project": "p", "config": config}
        ).raise_for_status()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    folder: Path = tmp_path_factory.mktemp("schemathesis")
    with running_server(
        f"sqlite:///{folder / 'store.db'}",
        extra_args=["--files-root", str(folder / "files"), "--max-body-mb", "1"],
    ) as proc:
        _seed(proc.api)
        yield proc


SEEDED = {"entity": "e", "project": "p", "run_id": "r1", "sweep_id": "s1", "name": "a.txt"}


def _path_names(operation: Any) -> set[str]:
    return {p.name for p in operation.path_parameters}


def _explore(strategy: Any, label: str, failures: list[str]) -> bool:
    """Run ``strategy``'s examples; False when it can generate none (e.g. negative data for an
    operation without parameters)."""

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        response = case.call(timeout=30)
        where = f"{case.method} {case.formatted_path} ({label})"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.status_code} {response.text[:300]}")
            return
        ctype = response.headers.get("content-type") or [""]
        if isinstance(ctype, list):  # schemathesis keeps every value of a header
            ctype = ctype[0]
        if response.status_code >= 400 and str(ctype).startswith("application/json"):
            doc = response.json()
            if set(doc) != {"error"} or set(doc["error"]) != {"code", "message"}:
                failures.append(f"{where}: error body {doc}")

    try:
        check()
    except Unsatisfiable:
        return False
    return True


def test_no_server_errors(live_server: ServerProc) -> None:
    """Every operation, with valid (positive) and invalid (negative) generated data, on random
    and on seeded path parameters: never a 5xx, and errors always in the documented shape."""
    schema = schemathesis.openapi.from_url(f"{live_server.api}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 29
    explored = 0
    for operation in operations:
        seeded = {k: v for k, v in SEEDED.items() if k in _path_names(operation)}
        variants: list[dict[str, Any]] = [{}]
        if seeded:
            variants.append({"path_parameters": seeded})
        # Valid data on random and on existing objects; invalid data is refused before any
        # object is looked up, so random paths do for it.
        runs = [(GenerationMode.POSITIVE, v) for v in variants] + [(GenerationMode.NEGATIVE, {})]
        for mode, extra in runs:
            strategy = operation.as_strategy(generation_mode=mode, **extra)
            label = mode.value + (" seeded" if extra else "")
            explored += _explore(strategy, label, failures)
    assert explored >= len(operations) * 2
    assert not failures, "\n".join(failures[:30])
