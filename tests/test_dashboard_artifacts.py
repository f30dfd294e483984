"""The dashboard's Artifacts view (web/src/views/artifacts.ts) in Debian's chromium: a project's
artifacts by type, a name's versions with aliases and creators, the file tree with previews of
text, JSON, CSV tables and images, the diff of two versions, and the lineage graph whose run
nodes open the run pages. The store is filled by the SDK in a subprocess and served by a real
``runyard server``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_python
from tests.serverproc import ServerProc, running_server
from tests.test_dashboard import browser, checked_page, shot  # noqa: F401 - the shared chromium fixture

FILL = r"""
import json, struct, zlib, runyard
from pathlib import Path

def png(w, h, rgb):
    raw = b"".join(b"\x00" + bytes(rgb) * w for _ in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

d = Path("data")
d.mkdir()
(d / "notes.txt").write_text("first notes")
(d / "config.json").write_text(json.dumps({"lr": 0.1, "layers": [1, 2]}))
(d / "table.csv").write_text("city,temp\nOslo,3\nLima,19\n")
(d / "img.png").write_bytes(png(4, 3, (200, 30, 30)))
(d / "old.txt").write_text("removed in v1")
with runyard.init(entity="e", project="p", id="prep1", job_type="prep") as run:
    art = runyard.Artifact("ds", "dataset", metadata={"rows": 2, "source": "weather"})
    art.add_dir(d)
    run.log_artifact(art, aliases=["raw"])
    (d / "old.txt").unlink()
    (d / "notes.txt").write_text("second notes")
    (d / "new.txt").write_text("added in v1")
    art = runyard.Artifact("ds", "dataset", metadata={"rows": 2})
    art.add_dir(d)
    run.log_artifact(art, aliases=["clean"])
with runyard.init(entity="e", project="p", id="train1", job_type="train") as run:
    run.use_artifact("ds:clean")
    Path("w.bin").write_bytes(b"\x00\x01weights")
    model = runyard.Artifact("net", "model")
    model.add_file("w.bin")
    run.log_artifact(model, aliases=["best"])
with runyard.init(entity="e", project="p", id="eval1", job_type="eval") as run:
    run.use_artifact("net:best")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    folder: Path = tmp_path_factory.mktemp("dash-artifacts")
    run_python(FILL, folder, env={"RUNYARD_DIR": str(folder / ".runyard")})
    store = folder / ".runyard" / "runyard.db"
    assert store.is_file(), list((folder / ".runyard").iterdir())
    with running_server(
        f"sqlite:///{store}", extra_args=["--artifacts", str(folder / ".runyard" / "blobs")]
    ) as proc:
        yield proc


@pytest.fixture
def page(browser: Any, server: ServerProc) -> Iterator[Any]:  # noqa: F811
    with checked_page(browser, server.url, size=(1280, 900)) as pg:
        yield pg


def test_artifacts_view(page: Any) -> None:
    page.goto("/#/")
    page.get_by_role("link", name="artifacts").click()
    page.wait_for_url("**/#/a/e/p")
    datasets = page.get_by_role("table", name="Artifacts of type dataset")
    datasets.get_by_role("link", name="ds").wait_for()  # the list is fetched after the route
    assert (
        page.get_by_role("table", name="Artifacts of type model")
        .get_by_role("link", name="net")
        .is_visible()
    )
    datasets.get_by_role("link", name="ds").click()

    versions = page.get_by_role("table", name="Versions")
    versions.locator("[data-version=v1]").wait_for()
    assert versions.locator("[data-version=v1] [data-alias]").all_inner_texts() == [
        "latest",
        "clean",
    ]
    assert versions.locator("[data-version=v0] [data-alias]").all_inner_texts() == ["raw"]
    assert versions.locator("[data-version=v1]").get_attribute("aria-selected") == "true"
    assert "prep1" in versions.locator("[data-version=v0]").inner_text()
    assert '"rows": 2' in page.get_by_label("Metadata").inner_text()

    files = page.get_by_role("navigation", name="Files")
    preview = page.locator(".art-preview")
    files.locator("[data-path='notes.txt']").click()
    page.get_by_label("Preview of notes.txt").wait_for()
    assert page.get_by_label("Preview of notes.txt").inner_text() == "second notes"
    files.locator("[data-path='config.json']").click()
    page.get_by_label("Preview of config.json").wait_for()
    assert '"layers"' in page.get_by_label("Preview of config.json").inner_text()
    files.locator("[data-path='table.csv']").click()
    table = preview.get_by_role("table", name="Table preview")
    table.wait_for()
    assert table.locator("th").all_inner_texts() == ["city", "temp"]
    assert table.locator("tbody tr").count() == 2
    files.locator("[data-path='img.png']").click()
    img = preview.locator("img")
    img.wait_for()
    page.wait_for_function("() => document.querySelector('.art-preview img').naturalWidth === 4")
    shot(page, "artifacts-version")

    page.get_by_label("Compare with version").select_option("v0")
    diff = page.get_by_role("table", name="Changes from v0 to v1")
    diff.wait_for()
    kinds = {
        row.locator("td.mono").inner_text(): row.get_attribute("data-kind")
        for row in diff.locator("tbody tr").all()
    }
    assert kinds == {"new.txt": "added", "old.txt": "removed", "notes.txt": "changed"}
    assert "diff=v0" in page.url

    graph = page.get_by_role("img", name="Lineage graph")
    graph.locator("text=run train1").wait_for()
    assert graph.locator("text=run prep1").count() == 1
    # the model's lineage: ds:v1 went into train1, which made net:v0, which eval1 used
    page.goto("/#/a/e/p/net")
    graph = page.get_by_role("img", name="Lineage graph")
    graph.locator("text=run eval1").wait_for()
    assert (
        graph.locator("text=ds:v1").count() == 1 and graph.locator("text=run train1").count() == 1
    )
    shot(page, "artifacts-lineage")
    graph.locator("a", has_text="run eval1").click()
    page.wait_for_url("**/#/r/e/p/eval1")
