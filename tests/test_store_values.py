"""Store.logged_steps / Store.logged_values: the values of one key of many runs (the
dashboard's media panels: an image key's slider, a histogram over time), on SQLite and
PostgreSQL, and the same answer from the base class's default (history)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runyard.store import JournalBatch
from runyard.store.base import Store, thin_indices
from runyard.store.sql import SQLStore
from tests.serverproc import ServerProc


def _hist(step: int) -> dict[str, Any]:
    return {"_type": "histogram", "values": [step, 1, 2], "bins": [0.0, 1.0, 2.0, 3.0 + step]}


def _run(store: SQLStore, run_id: str, rows: list[dict[str, Any]]) -> int:
    header = {"entity": "e", "project": "p", "run_id": run_id, "journal_id": f"j-{run_id}"}
    records: list[Any] = [(1, "run", header)] + [(i + 2, "row", r) for i, r in enumerate(rows)]
    store.apply(JournalBatch(f"j-{run_id}", header, records))
    run = store.find_run("e", "p", run_id)
    assert run is not None
    return run.pk


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SQLStore, dict[str, int]]]:
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('values') / 'store.db'}"
        else:
            from tests import pg

            url = stack.enter_context(pg.fresh_schema())
        store = SQLStore(url)
        stack.callback(store.close)
        # "h" every third step of 300, a number at every step, a caption string at step 5
        rows = []
        for step in range(300):
            row: dict[str, Any] = {"_step": step, "loss": 1.0 / (step + 1)}
            if step % 3 == 0:
                row["h"] = _hist(step)
            if step == 5:
                row["note"] = "five"
            rows.append(row)
        pks = {
            "a": _run(store, "a", rows),
            "b": _run(store, "b", [{"_step": 7, "h": _hist(7)}, {"_step": 9, "loss": 2.0}]),
            "none": _run(store, "none", [{"_step": 0, "loss": 1.0}]),
        }
        yield store, pks


def test_logged_steps(filled: tuple[SQLStore, dict[str, int]]) -> None:
    store, pks = filled
    got = store.logged_steps(list(pks.values()), "h")
    assert got == {pks["a"]: list(range(0, 300, 3)), pks["b"]: [7], pks["none"]: []}
    assert store.logged_steps([pks["a"]], "no-such-key") == {pks["a"]: []}
    assert store.logged_steps(list(pks.values()), "h") == Store.logged_steps(
        store, list(pks.values()), "h"
    )


def test_logged_values_whole_thinned_and_ranged(filled: tuple[SQLStore, dict[str, int]]) -> None:
    store, pks = filled
    a, b, none = pks["a"], pks["b"], pks["none"]
    whole = store.logged_values([a, b, none], "h")
    assert whole[a].steps == list(range(0, 300, 3)) and whole[a].total == 100
    assert whole[a].values[10] == _hist(30) and not whole[a].thinned
    assert (whole[b].steps, whole[b].values) == ([7], [_hist(7)])
    assert (whole[none].steps, whole[none].total) == ([], 0)

    thin = store.logged_values([a, b], "h", samples=11)
    assert thin[a].thinned and thin[a].total == 100 and len(thin[a].steps) == 11
    assert thin[a].steps[0] == 0 and thin[a].steps[-1] == 297  # first and last kept
    assert thin[a].values == [_hist(s) for s in thin[a].steps]
    assert not thin[b].thinned and thin[b].steps == [7]

    window = store.logged_values([a], "h", min_step=30, max_step=45)
    assert window[a].steps == [30, 33, 36, 39, 42, 45] and window[a].total == 6
    one = store.logged_values([a], "note")
    assert (one[a].steps, one[a].values) == ([5], ["five"])
    numbers = store.logged_values([a], "loss", samples=3, max_step=10)
    assert numbers[a].steps == [0, 5, 10] and numbers[a].values[1] == pytest.approx(1 / 6)

    for args in [({}), ({"samples": 11}), ({"min_step": 30, "max_step": 45})]:
        fast = store.logged_values([a, b, none], "h", **args)  # type: ignore[arg-type]
        slow = Store.logged_values(store, [a, b, none], "h", **args)  # type: ignore[arg-type]
        assert fast == slow, args


def test_thin_indices() -> None:
    assert thin_indices(5, None) == [0, 1, 2, 3, 4]
    assert thin_indices(5, 9) == [0, 1, 2, 3, 4]
    assert thin_indices(101, 3) == [0, 50, 100]
    assert thin_indices(10, 1) == [9] and thin_indices(10, 0) == []
    assert len(thin_indices(1000, 64)) == 64


def test_routes_through_a_server(shared_server: ServerProc) -> None:
    """POST /projects/{e}/{p}/steps and /values (runyard.server.routes.media) over a real
    server (the session's shared one: its own project)."""
    from runyard.store import open_store

    http_store = open_store(shared_server.url)
    for run_id, every in (("a", 1), ("b", 3)):
        header = {"entity": "e", "project": "values-routes", "run_id": run_id}
        rows = [
            {"_step": s, "loss": 1.0, **({"h": _hist(s)} if s % every == 0 else {})}
            for s in range(50)
        ]
        records: list[Any] = [(1, "run", header)] + [(i + 2, "row", r) for i, r in enumerate(rows)]
        http_store.apply(JournalBatch(f"j-values-routes-{run_id}", header, records))
    with httpx.Client(base_url=f"{shared_server.api}/projects/e/values-routes") as client:
        steps = client.post("/steps", json={"key": "h", "runs": ["b", "no-such-run"]})
        assert steps.status_code == 200
        assert steps.json() == {"key": "h", "steps": {"b": list(range(0, 50, 3))}}
        body = {"key": "h", "runs": ["a", "b"], "samples": 3, "min_step": 3}
        values = client.post("/values", json=body).json()["values"]
        assert values["a"]["steps"] == [3, 26, 49] and values["a"]["total"] == 47
        assert values["a"]["thinned"] and values["b"]["values"][0] == _hist(3)
        big = client.post("/values", json={**body, "runs": ["a"] * 100, "samples": 9000})
        assert big.status_code == 422 and "fewer samples" in big.text
        assert client.post("/values", json={"key": "h"}).status_code == 422
