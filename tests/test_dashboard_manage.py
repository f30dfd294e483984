"""Managing a run from its dashboard page (web/src/views/runedit.ts): rename, tags and notes
edited in place, Delete after a confirmation, Stop of a live run, and refusals shown.

One ``runyard server --auth`` with keys of two users (alice, bob); the browser carries alice's
key (local storage, as the **API key** button keeps it) and is switched to bob's for the
refusals. What the page did is checked through runyard's ``Api`` after a reload. Stop is
checked end to end: the real wandb client (issue 12: W&B's stop button interrupts the script
through the file stream's ``stopped`` answer) and runyard's own SDK in a preempting run
(``run.should_stop``), each in its own process. Screenshots as in tests/test_dashboard.py.
"""

from __future__ import annotations

import hashlib
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runyard.api import Api
from runyard.store.base import JournalBatch
from runyard.store.sql import SQLStore
from tests.serverproc import ServerProc, create_key, running_server
from tests.test_dashboard import browser, checked_page, shot  # noqa: F401 - the shared chromium fixture
from tests.wandbclient import start_script, started, stoppable_run, wait_for_run, wandb_env

pytestmark = pytest.mark.slow

PROJECT = "manage"
FILE_BYTES = b"weights of the run to delete\n" * 10


@dataclass
class Site:
    server: ServerProc
    alice: str
    bob: str
    blobs: Path

    def api(self, key: str | None = None) -> Api:
        return Api(store=self.server.url, api_key=key or self.alice, recover=False)


def _finished_run(store: SQLStore, run_id: str, name: str, tags: list[str]) -> None:
    header = {
        "entity": "alice",
        "project": PROJECT,
        "run_id": run_id,
        "name": name,
        "tags": tags,
        "config": {"lr": 0.1},
        "start_time": time.time() - 60,
    }
    records: list[Any] = [(1, "run", header)]
    records += [(i + 2, "row", {"_step": i, "_runtime": i, "loss": 1 / (i + 1)}) for i in range(4)]
    records.append((6, "finish", {"state": "finished", "exit_code": 0, "runtime": 4.0}))
    store.apply(JournalBatch(f"j-{run_id}", header, records, summary={"loss": 0.25}))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("dashboard-manage")
    url = f"sqlite:///{folder / 'store.db'}"
    blobs = folder / "blobs"  # the blob store beside the SQLite file (runyard.blobs.local)
    alice, bob = create_key(url, "alice"), create_key(url, "bob")
    store = SQLStore(url)
    _finished_run(store, "edit1", "first-name", ["a"])
    _finished_run(store, "del1", "doomed-run", [])
    _finished_run(store, "guard1", "guarded-run", ["keep"])
    store.close()
    with running_server(url, auth=True) as server:
        made = Site(server, alice, bob, blobs)
        made.api().store.put_file("alice", PROJECT, "del1", "model.bin", FILE_BYTES)
        yield made


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:  # noqa: F811
    key = (
        f"if (!localStorage.getItem('runyard.apiKey')) "
        f"localStorage.setItem('runyard.apiKey', {site.alice!r});"
    )
    with checked_page(
        browser, site.server.url, size=(1280, 900), timeout=20_000, init_script=key
    ) as pg:
        yield pg


def use_key(page: Any, key: str) -> None:
    """What pasting another key after **API key** does: the next requests carry it."""
    page.evaluate("key => localStorage.setItem('runyard.apiKey', key)", key)


def open_run(page: Any, run_id: str) -> None:
    page.goto(f"/#/r/alice/{PROJECT}/{run_id}")
    page.wait_for_selector("#run-name")
    page.wait_for_selector("#run-actions #run-delete")


def test_rename_tags_and_notes_persist(page: Any, site: Site) -> None:
    open_run(page, "edit1")
    assert page.inner_text("#run-name") == "first-name"

    # while the rename is in flight every control is disabled; its answer enables them again
    held: list[Any] = []
    page.route(f"**/api/v1/runs/alice/{PROJECT}/edit1", lambda route: held.append(route))
    page.click("#run-rename")
    page.fill("#run-name-input", "  renamed-run ")
    page.press("#run-name-input", "Enter")
    page.wait_for_function("document.querySelector('#run-delete').disabled")
    assert page.is_disabled("#run-name-save") and page.is_disabled("#run-tag-add")
    while not held:
        page.wait_for_timeout(50)
    assert held[0].request.method == "PATCH"
    held[0].continue_()
    page.unroute(f"**/api/v1/runs/alice/{PROJECT}/edit1")
    page.wait_for_function("document.querySelector('#run-name')?.textContent === 'renamed-run'")
    assert not page.is_disabled("#run-delete") and not page.is_disabled("#run-tag-add")
    assert page.title().startswith("renamed-run")

    # tags: two added at once, one taken off
    page.fill("#run-tag-input", "best, v2")
    page.press("#run-tag-input", "Enter")
    page.wait_for_selector("#run-tags [data-tag='v2']")
    page.click("#run-tags [aria-label='Remove the tag a']")
    page.wait_for_selector("#run-tags [data-tag='a']", state="detached")
    assert page.eval_on_selector_all("#run-tags [data-tag]", "e => e.map(t => t.dataset.tag)") == [
        "best",
        "v2",
    ]

    # notes, on two lines
    page.click("#run-notes-edit")
    page.fill("#run-notes-input", "baseline for the lr scan\nsecond line")
    page.click("#run-notes-save")
    page.wait_for_function(
        "document.querySelector('#run-notes-text')?.textContent.startsWith('baseline')"
    )
    shot(page, "run-manage-edited")

    # stored: a reload shows it, runyard's Api reads it, the runs table has the new name
    page.reload()
    page.wait_for_function("document.querySelector('#run-name')?.textContent === 'renamed-run'")
    assert page.inner_text("#run-notes-text") == "baseline for the lr scan\nsecond line"
    run = site.api().run(f"alice/{PROJECT}/edit1")
    assert (run.name, run.tags, run.notes) == (
        "renamed-run",
        ["best", "v2"],
        "baseline for the lr scan\nsecond line",
    )
    page.goto(f"/#/p/alice/{PROJECT}/runs")
    page.wait_for_selector("#runs-grid .grid-body [data-run='edit1']")
    assert "renamed-run" in page.inner_text("#runs-grid .grid-body [data-run='edit1']")

    # notes cleared: stored as none
    open_run(page, "edit1")
    page.click("#run-notes-edit")
    page.fill("#run-notes-input", "  ")
    page.click("#run-notes-save")
    page.wait_for_function("document.querySelector('#run-notes-text')?.textContent === 'none'")
    assert site.api().run(f"alice/{PROJECT}/edit1").notes is None


def _blob_files(root: Path, data: bytes) -> list[Path]:
    digest = hashlib.sha256(data).hexdigest()
    return [p for p in root.rglob("*") if p.is_file() and digest in p.name]


def test_delete_asks_naming_the_run_then_deletes_it_and_its_files(page: Any, site: Site) -> None:
    assert _blob_files(site.blobs, FILE_BYTES)  # the run's file is stored
    open_run(page, "del1")
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.click("#run-delete")
    page.wait_for_function(
        "document.querySelector('#run-edit-status')?.textContent === 'Nothing deleted.'"
    )
    assert len(asked) == 1
    assert "doomed-run" in asked[0] and f"alice/{PROJECT}/del1" in asked[0]
    assert "4 steps" in asked[0] and "1 file (290 B)" in asked[0]
    assert site.api().run(f"alice/{PROJECT}/del1").name == "doomed-run"  # a "no" deletes nothing

    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.click("#run-delete")
    page.wait_for_function(f"location.hash === '#/p/alice/{PROJECT}/runs'")
    page.wait_for_selector("#runs-grid .grid-body [data-run]")
    assert not page.query_selector("#runs-grid .grid-body [data-run='del1']")
    shot(page, "run-manage-deleted")
    with pytest.raises(LookupError):
        site.api().run(f"alice/{PROJECT}/del1")
    assert site.api().store.list_files("alice", PROJECT, "del1") == []
    assert _blob_files(site.blobs, FILE_BYTES) == []  # its content left the blob store


def test_refusals_are_shown_and_change_nothing(page: Any, site: Site) -> None:
    open_run(page, "guard1")
    use_key(page, site.bob)  # a key of another user: 403 for alice's runs
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.click("#run-rename")
    page.fill("#run-name-input", "bob-was-here")
    page.press("#run-name-input", "Enter")
    error = page.wait_for_selector("#run-edit-error")
    text = error.inner_text()
    assert text.startswith("Could not rename the run:")
    assert "may not access entity 'alice'" in text and "API key" in text
    assert not page.is_disabled("#run-name-save")  # enabled again, the typed name kept
    assert page.input_value("#run-name-input") == "bob-was-here"
    shot(page, "run-manage-refused")

    page.fill("#run-tag-input", "bobs")
    page.press("#run-tag-input", "Enter")
    page.wait_for_function(
        "document.querySelector('#run-edit-error')?.textContent.startsWith('Could not add the tag')"
    )
    page.click("#run-delete")  # the dry run is refused: nothing is asked
    page.wait_for_function(
        "document.querySelector('#run-edit-error')?.textContent.startsWith('Could not delete')"
    )
    assert dialogs == []
    run = site.api().run(f"alice/{PROJECT}/guard1")
    assert (run.name, run.tags) == ("guarded-run", ["keep"])

    # the run deleted behind the page's back: 404, said as such
    use_key(page, site.alice)
    site.api().run(f"alice/{PROJECT}/guard1").delete()
    page.fill("#run-tag-input", "late")
    page.press("#run-tag-input", "Enter")
    page.wait_for_function(
        "document.querySelector('#run-edit-error')?.textContent.includes('deleted meanwhile')"
    )
    assert "no run alice/manage/guard1" in page.inner_text("#run-edit-error")


def _stop_from_the_page(page: Any, run_id: str) -> str:
    """Open the run, press Stop, accept the question; the question asked."""
    open_run(page, run_id)
    page.wait_for_selector("#run-stop")
    shot(page, f"run-manage-{run_id}-live")
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.click("#run-stop")
    page.wait_for_function(
        "document.querySelector('#run-edit-status')?.textContent.startsWith('Stopped')"
    )
    page.wait_for_selector(".runhead .badge.state-stopped")
    assert not page.query_selector("#run-stop")  # a stopped run has nothing to stop
    return asked[0]


#: The real wandb client, unchanged W&B code, logging until it is stopped.
WANDB_SCRIPT = stoppable_run(
    'project="manage", entity="alice", id="wbstop", name="wandb-client-run"', 6000
)


def test_stop_interrupts_a_wandb_client(page: Any, site: Site, tmp_path: Path) -> None:
    """W&B's stop button, through runyard: the client's file stream answers `stopped`, the
    script gets a KeyboardInterrupt, the run stays `stopped`."""
    with start_script(WANDB_SCRIPT, tmp_path, site.server.url, site.alice) as proc:
        wait_for_run(site.api(), f"alice/{PROJECT}/wbstop", proc, steps=3, state="running")
        asked = _stop_from_the_page(page, "wbstop")
        assert "wandb-client-run" in asked and f"alice/{PROJECT}/wbstop" in asked
        shot(page, "run-manage-stopped")
        out, _ = proc.communicate(timeout=120)
    assert "INTERRUPTED" in out and "NOT STOPPED" not in out, out
    run = site.api().run(f"alice/{PROJECT}/wbstop")
    assert run.state == "stopped" and "dashboard" in (run.record.failure or "")
    assert 3 <= run.record.last_step < 5999


#: runyard's SDK: a requeueable job that said it may be preempted, looping until told to stop.
SDK_SCRIPT = """
import time
import runyard

run = runyard.init(project="manage", entity="alice", id="prestop", name="preempting-run")
run.mark_preempting()
for i in range(6000):
    run.log({"i": i})
    if run.should_stop:
        print("SHOULD_STOP", run.stop_reason)
        break
    time.sleep(0.02)
else:
    print("NOT STOPPED")
run.finish()
"""


def test_stop_a_preempting_runyard_run(page: Any, site: Site, tmp_path: Path) -> None:
    """A preempting run shows Stop too (W&B lets it be stopped); the SDK's stop poll sees it
    and the run ends `stopped`, not `preempted`."""
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(SDK_SCRIPT))
    env = {
        k: v
        for k, v in wandb_env(tmp_path, None, None).items()
        if not k.startswith(("HTTP", "http"))
    }
    env.update(
        RUNYARD_BASE_URL=site.server.url,
        RUNYARD_API_KEY=site.alice,
        RUNYARD_STOP_POLL_INTERVAL="0.2",
        RUNYARD_SILENT="true",
        RUNYARD_DISABLE_GIT="true",
        RUNYARD_CONFIG_DIR=str(tmp_path / ".runyard-config"),
    )
    with started([sys.executable, str(script)], tmp_path, env) as proc:
        wait_for_run(site.api(), f"alice/{PROJECT}/prestop", proc, steps=3, state="preempting")
        _stop_from_the_page(page, "prestop")
        out, _ = proc.communicate(timeout=120)
    assert "SHOULD_STOP" in out and "dashboard" in out and "NOT STOPPED" not in out, out
    assert proc.returncode == 0, out
    assert site.api().run(f"alice/{PROJECT}/prestop").state == "stopped"
