"""Rich values through log(): stored as W&B's references, files content-addressed, read back."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import runyard
from runyard.api import Api
from runyard.media import Audio, Histogram, Html, Image, MediaError, Table, Video
from runyard.store.base import JournalBatch
from runyard.store.sql import SQLStore


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUNYARD_DIR", str(tmp_path))
    monkeypatch.setenv("RUNYARD_CONSOLE", "off")
    return tmp_path


def rows(root: Path, run: runyard.Run) -> list[dict]:
    return list(Api(dir=root).run(run.path).scan_history())


RNG = np.random.default_rng(0)
IMG = RNG.integers(0, 256, (32, 48, 3), dtype=np.uint8)


def test_images_histograms_tables_round_trip(root: Path, store_url: str | None) -> None:
    """Through the SDK into the embedded SQLite store and into PostgreSQL (run_files, KIND_JSON
    references in history and summary)."""
    run = runyard.init(project="media")
    chw = np.ascontiguousarray(IMG.transpose(2, 0, 1))
    run.log(
        {
            "img": Image(IMG, caption="pred 3"),
            "chw": Image(chw),
            "gray": Image(IMG[:, :, 0].astype(np.float64) / 255.0),
            "batch": [Image(IMG, caption="a"), Image(IMG[::-1], caption="b")],
            "h": Histogram(RNG.normal(size=10_000), num_bins=20),
            "t": Table(columns=["id", "image", "label"], data=[[1, Image(IMG), "cat"]]),
        }
    )
    run.log({"img": Image(IMG)})  # the same pixels again: one blob, a new name
    run.finish()
    assert Api(dir=root).store_url.startswith("postgresql") == (store_url is not None)
    api_run = Api(dir=root).run(run.path)
    first, second = rows(root, run)
    ref = first["img"]
    assert ref["_type"] == "image-file" and ref["format"] == "png"
    assert (ref["width"], ref["height"], ref["caption"]) == (48, 32, "pred 3")
    assert ref["path"] == f"media/images/img_0_{ref['sha256'][:20]}.png"
    assert np.array_equal(api_run.load(ref, as_numpy=True), IMG)
    assert np.array_equal(api_run.load(first["chw"], as_numpy=True), IMG)
    assert np.array_equal(api_run.load(first["gray"], as_numpy=True), IMG[:, :, 0])
    assert second["img"]["sha256"] == ref["sha256"] and second["img"]["path"] != ref["path"]
    batch = first["batch"]
    assert batch["_type"] == "images/separated" and batch["count"] == 2
    assert batch["captions"] == ["a", "b"]
    loaded = api_run.load(batch, as_numpy=True)
    assert np.array_equal(loaded[1], IMG[::-1])
    counts, edges = api_run.load(first["h"])
    assert len(counts) == 20 and len(edges) == 21 and counts.sum() == 10_000
    table = api_run.load(first["t"])
    assert list(table.columns) == ["id", "image", "label"] and table["label"][0] == "cat"
    cell = table["image"][0]
    assert cell["_type"] == "image-file"
    assert np.array_equal(api_run.load(cell, as_numpy=True), IMG)
    # The summary keeps the last reference; files are listed and downloadable.
    assert api_run.summary["img"] == second["img"]
    names = {f.name for f in api_run.files()}
    assert ref["path"] in names and second["img"]["path"] in names and cell["path"] in names
    if store_url is None:  # the embedded store's blobs: kept (stored once), no pins left
        blobs = list((root / "blobs" / "sha256").rglob("*"))
        assert sum(1 for b in blobs if b.name == ref["sha256"]) == 1
        assert not list((root / "blobs" / ".pins").rglob("*"))
    out = api_run.file(ref["path"]).download(root / "dl")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == ref["sha256"]


def test_value_rules_follow_wandb(root: Path, store_url: str | None) -> None:
    run = runyard.init(project="media")
    big = RNG.normal(size=1000)
    run.log(
        {
            "list": [1, 2.5, "x", None, [3, float("nan")]],
            "tuple": (1, 2),
            "one": np.array([3.5]),
            "small": np.arange(5),
            "auto": big,
            "huge": 2**70,
            "neg": -(2**80),
        }
    )
    run.finish()
    (row,) = rows(root, run)
    assert row["list"][:4] == [1, 2.5, "x", None] and row["list"][4][0] == 3
    assert np.isnan(row["list"][4][1])
    assert row["tuple"] == [1, 2] and row["one"] == 3.5 and row["small"] == [0, 1, 2, 3, 4]
    assert row["auto"]["_type"] == "histogram" and len(row["auto"]["values"]) == 32
    assert row["auto"]["values"] == np.histogram(big, bins=32)[0].tolist()
    assert row["huge"] == float(2**70) and row["neg"] == -float(2**80)  # W&B: the nearest float
    summary = Api(dir=root).run(run.path).summary
    assert summary["huge"] == float(2**70) and summary["tuple"] == [1, 2]
    assert summary["list"][:4] == [1, 2.5, "x", None] and summary["auto"] == row["auto"]


def test_run_files_and_json_values_in_the_sql_store(store: SQLStore, tmp_path: Path) -> None:
    """The store level, on SQLite and PostgreSQL: run files (put, replace, link by hash within
    an entity only, list, open) and KIND_JSON values (lists, references) in rows and summary."""
    ref = {"_type": "image-file", "sha256": "ab" * 32, "size": 3, "path": "media/images/x.png"}
    for entity, run_id in (("a", "r1"), ("a", "r2"), ("b", "r3")):
        header = {"entity": entity, "project": "p", "run_id": run_id}
        row = {"_step": 0, "_runtime": 0.0, "_timestamp": 1.0, "l": [1, [2.5, "x"], None]}
        row["img"] = ref
        summary = {"img": ref, "l": row["l"]}
        store.apply(
            JournalBatch(f"j-{run_id}", header, [(1, "run", header), (2, "row", row)], summary)
        )
    (src := tmp_path / "w.bin").write_bytes(b"weights" * 1000)
    first = store.put_file("a", "p", "r1", "ckpt/w.bin", src)
    assert first.size == 7000 and first.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    key = f"sha256:{first.sha256}"
    again = store.put_file("a", "p", "r1", "ckpt/w.bin", b"replaced")  # replace by name
    assert again.size == 8
    store.put_file("a", "p", "r1", "keep.bin", src)
    linked = store.link_file("a", "p", "r2", "copy.bin", key)  # same entity: linked
    assert linked is not None and linked.sha256 == first.sha256
    assert store.link_file("b", "p", "r3", "stolen.bin", key) is None  # other entity: never
    assert store.link_file("a", "p", "r2", "x.bin", "sha256:" + "0" * 64) is None
    assert [f.name for f in store.list_files("a", "p", "r1")] == ["ckpt/w.bin", "keep.bin"]
    assert [f.name for f in store.list_files("b", "p", "r3")] == []
    record, stream = store.open_file("a", "p", "r2", "copy.bin")
    with stream:
        assert stream.read() == src.read_bytes() and record.size == 7000
    with pytest.raises(FileNotFoundError):
        store.open_file("b", "p", "r3", "stolen.bin")
    run = store.find_run("a", "p", "r1")
    assert run is not None
    (row,) = store.history(run.pk)
    assert row["l"] == [1, [2.5, "x"], None] and row["img"] == ref
    assert run.summary["img"] == ref and run.summary["l"] == [1, [2.5, "x"], None]


def test_audio_video_html(root: Path) -> None:
    run = runyard.init(project="media")
    wave = np.sin(np.linspace(0, 440 * 2 * np.pi, 1600)).astype(np.float32) * 0.5
    frames = RNG.integers(0, 256, (3, 3, 16, 16), dtype=np.uint8)
    run.log(
        {
            "speech": Audio(wave, sample_rate=16000, caption="hi"),
            "rollout": Video(frames, fps=4),
            "report": Html("<h1>epoch 3</h1>"),
        }
    )
    run.finish()
    (row,) = rows(root, run)
    api_run = Api(dir=root).run(run.path)
    import soundfile

    audio = row["speech"]
    assert audio["_type"] == "audio-file" and audio["path"].endswith(".wav")
    data, rate = soundfile.read(api_run.open_file(audio["path"]))
    assert rate == 16000 and len(data) == 1600 and abs(data - wave).max() < 1e-3
    video = row["rollout"]
    assert video["_type"] == "video-file" and (video["width"], video["height"]) == (16, 16)
    assert api_run.load(video)[:6] == b"GIF89a"
    assert api_run.load(row["report"]) == b"<h1>epoch 3</h1>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (lambda: Image(np.zeros((5, 5, 7), np.uint8)), r"'bad'.*shape \(5, 5, 7\).*channels"),
        (lambda: Image(np.full((4, 4), np.nan)), r"'bad'.*NaN"),
        (lambda: Image(np.zeros((4, 4), complex)), r"'bad'.*complex"),
        (
            lambda: Image(np.broadcast_to(np.uint8(0), (40_000, 20_000, 3))),
            r"'bad'.*2400000000 bytes.*resize",
        ),
        (lambda: Table(columns=[]), r"'bad'.*no columns"),
        (lambda: Histogram([1.0, float("nan")] * 3000), r"'bad'.*finite"),
        (lambda: [Image(IMG), Html("x")], r"'bad'.*one type"),
        (lambda: Video(np.zeros((2, 16, 16), np.uint8)), r"'bad'.*T x C x H x W"),
        (lambda: object(), r"'bad'.*object"),
    ],
)
def test_bad_input_names_the_key_and_keeps_the_run(root: Path, value, expected) -> None:
    run = runyard.init(project="media")
    run.log({"ok": 1})
    with pytest.raises((MediaError, TypeError), match=expected):
        run.log({"bad": value(), "other": 2})
    run.log({"ok": 2})
    run.finish()
    assert [r["ok"] for r in rows(root, run)] == [1, 2]
    assert all("bad" not in r and "other" not in r for r in rows(root, run))


def test_table_rows_must_match_columns() -> None:
    with pytest.raises(ValueError, match=r"expects 2 columns \['a', 'b'\].*3 values"):
        Table(columns=["a", "b"], data=[[1, 2, 3]])
    table = Table(columns=["a"])
    table.add_data(1)
    with pytest.raises(ValueError, match="has 2 values; the table has 1 rows"):
        table.add_column("b", [1, 2])


def test_logging_a_table_again_with_more_rows(root: Path) -> None:
    run = runyard.init(project="media")
    table = Table(columns=["step", "loss"])
    for step in range(3):
        table.add_data(step, 1.0 / (step + 1))
        run.log({"preds": table})
    run.finish()
    api_run = Api(dir=root).run(run.path)
    sizes = [len(api_run.load(r["preds"])) for r in rows(root, run)]
    assert sizes == [1, 2, 3]
    assert len(api_run.load(api_run.summary["preds"])) == 3


def test_media_survive_kill_9_after_log_returned(root: Path) -> None:
    """The row and the raw pixels are on disk when log() returns; recovery encodes them."""
    script = textwrap.dedent(
        """
        import os, signal, sys, numpy as np, runyard
        from runyard.media import Image, _worker
        import threading
        _worker.encode_entry = lambda *a, **k: threading.Event().wait()  # never encodes
        run = runyard.init(project="media", id="killed")
        img = np.arange(48 * 32 * 3, dtype=np.uint8).reshape(32, 48, 3)
        run.log({"img": Image(img), "h": np.sin(np.arange(100_000.0))})
        print("logged", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = dict(os.environ, RUNYARD_MODE="offline")
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL and "logged" in proc.stdout, proc.stderr
    assert list((root / "journal").glob("*.spool"))  # the raw entry waits
    api = Api(dir=root)
    from runyard.sdk.recovery import recover_journals

    recover_journals(root, api.store, include_offline=True)
    run = api.run("killed")
    assert run.state == "crashed"
    (row,) = list(run.scan_history())
    want = np.arange(48 * 32 * 3, dtype=np.uint8).reshape(32, 48, 3)
    assert np.array_equal(run.load(row["img"], as_numpy=True), want)
    counts, edges = np.histogram(np.sin(np.arange(100_000.0)), bins=32)  # binned by recovery
    assert row["h"] == {"_type": "histogram", "values": counts.tolist(), "bins": edges.tolist()}
    assert not list((root / "journal").glob("*.spool"))


def test_torch_like_tensors_are_duck_typed(root: Path) -> None:
    class FakeTensor:  # what Image needs of a torch tensor: detach().cpu().numpy(), CHW
        __module__ = "torch"

        def __init__(self, a: np.ndarray) -> None:
            self.a = a

        def detach(self) -> FakeTensor:
            return self

        def cpu(self) -> FakeTensor:
            return self

        def numpy(self) -> np.ndarray:
            return self.a

    run = runyard.init(project="media")
    run.log({"t": Image(FakeTensor(IMG.transpose(2, 0, 1).astype(np.float32) / 255.0))})
    run.finish()
    (row,) = rows(root, run)
    back = Api(dir=root).run(run.path).load(row["t"], as_numpy=True)
    assert np.abs(back.astype(int) - IMG.astype(int)).max() <= 1


def test_large_histograms_are_numpys_binned_off_the_training_thread(root: Path) -> None:
    run = runyard.init(project="media")
    big = RNG.normal(size=100_000)
    f32 = (RNG.normal(size=50_000) * 3).astype(np.float32)
    ints = RNG.integers(-5, 1000, 40_000)
    on_edges = np.round(RNG.uniform(0, 10, 60_000), 1)  # many values exactly on bin edges
    hist = Histogram(big, num_bins=100)
    run.log({"h": hist, "f32": Histogram(f32), "auto": big, "ints": ints, "e": on_edges})
    assert hist._counts is None  # log() spooled the values; the encoder thread bins them
    with pytest.raises(MediaError, match=r"'bad'.*not all finite"):
        bad = big.copy()
        bad[77_777] = np.inf
        run.log({"bad": Histogram(bad), "x": 1})
    run.finish()
    (row,) = rows(root, run)
    for key, values, bins in [
        ("h", big, 100),
        ("f32", f32, 64),
        ("auto", big, 32),
        ("ints", ints, 32),
        ("e", on_edges, 32),
    ]:
        counts, edges = np.histogram(values, bins=bins)
        assert row[key]["values"] == counts.tolist(), key
        assert row[key]["bins"] == edges.tolist(), key
    assert Api(dir=root).run(run.path).summary["h"] == row["h"]
    # Reading the bins of an unlogged histogram computes them (W&B's attributes).
    counts, edges = np.histogram(big, bins=64)
    assert Histogram(big).histogram == counts.tolist() and Histogram(big).bins == edges.tolist()


def test_spool_segments_are_reused_and_stale_entries_never_read(tmp_path: Path) -> None:
    """Segments are recycled (mapped, written over): read_spool returns exactly the entries
    written since, whichever path (mapped copy or pwritev) each took."""
    from runyard.media._spool import SpoolWriter, read_spool

    seen: list = []
    writer = SpoolWriter(tmp_path / "sp", seen.append, segment_bytes=1 << 16)
    payloads: dict[int, bytes] = {}
    live: set = set()
    mapped = False
    for i in range(60):
        data = RNG.bytes(int(RNG.integers(1, 30_000)))
        entry_id = writer.append({"enc": "file", "n": i}, [data[:7], data[7:]])
        payloads[entry_id] = data
        current = writer.current_segment
        for entry in seen:  # the encoder's part: hand back every finished segment
            if entry.segment != current and entry.id in live:
                live.discard(entry.id)
                writer.recycle(entry.segment)
        live.add(entry_id)
        mapped = mapped or writer._mm is not None
        if i % 10 == 9:
            writer._help()  # prefill and arm segments now (the helper thread's work)
        got = {e.id: e for e in read_spool(tmp_path / "sp")}
        assert set(got) == live  # none of the recycled segments' entries
        assert all(got[k].read() == payloads[k] and got[k].header["n"] == k - 1 for k in live)
    assert mapped and any(p.name.startswith("free-") for p in (tmp_path / "sp").iterdir())
    writer.close()


def test_a_burst_that_outran_the_encoder_leaves_segments_for_the_next(tmp_path: Path) -> None:
    """Back to back, log() fills segments faster than the encoder recycles them (written with
    pwritev then); once encoded they are all kept, mapped, so the next burst of that size
    copies into them, and read_spool still returns exactly the live entries."""
    from runyard.media._spool import SpoolWriter, read_spool

    seen: list = []
    writer = SpoolWriter(tmp_path / "sp", seen.append, segment_bytes=1 << 16)
    writer._helping = True  # the helper thread's work is done below, when the test says
    payloads: dict[int, bytes] = {}

    def burst() -> tuple[list[int], int]:
        ids, mapped = [], 0
        for _ in range(12):  # 12 x 40 KB, nothing recycled meanwhile
            data = RNG.bytes(40_000)
            ids.append(writer.append({"enc": "file"}, [data]))
            payloads[ids[-1]] = data
            mapped += writer._mm is not None
        return ids, mapped

    first, mapped_first = burst()
    done = list(dict.fromkeys(e.segment for e in seen if e.id in first))[:-1]
    for segment in done:
        writer.recycle(segment)  # the encoder catches up (the last one is still current)
    writer._help()  # arms them
    writer._helping = True
    second, mapped = burst()
    assert mapped_first == 0 and len(done) >= 5 and mapped == len(done)
    live = [e.id for e in seen if e.id in first and e.segment not in done] + second
    got = {e.id: e for e in read_spool(tmp_path / "sp")}
    assert sorted(got) == live and all(got[k].read() == payloads[k] for k in live)
    writer.close()


def test_masks_and_boxes_are_stored_as_wandb_stores_them(root: Path) -> None:
    mask = np.zeros((32, 48), np.uint8)
    mask[8:16, 10:20] = 2
    mask[20:, :] = 1
    box_data = [
        {
            "position": {"minX": 0.1, "maxX": 0.4, "minY": 0.2, "maxY": 0.5},
            "class_id": 2,
            "box_caption": "car",
            "scores": {"acc": np.float32(0.5)},
        },
        {
            "position": {"middle": [20, 10], "width": 8, "height": 4},
            "domain": "pixel",
            "class_id": 1,
        },
    ]
    boxes = {"predictions": {"box_data": box_data, "class_labels": {1: "person", 2: "car"}}}
    masks = {
        "truth": {"mask_data": mask, "class_labels": {0: "bg", 1: "road", 2: "car"}},
        "pred": {"mask_data": np.ascontiguousarray(mask[::-1])},
    }
    run = runyard.init(project="media")
    run.log(
        {
            "seg": Image(IMG, masks=masks, boxes=boxes),
            "batch": [Image(IMG, masks={"truth": masks["truth"]}), Image(IMG)],
            "t": Table(columns=["im"], data=[[Image(IMG, masks={"truth": masks["truth"]})]]),
        }
    )
    run.finish()
    api_run = Api(dir=root).run(run.path)
    (row,) = rows(root, run)
    names = {f.name for f in api_run.files()}
    truth = row["seg"]["masks"]["truth"]
    assert truth["_type"] == "mask" and truth["class_labels"] == {
        "0": "bg",
        "1": "road",
        "2": "car",
    }
    assert truth["path"] == f"media/images/mask/seg_0_{truth['sha256'][:20]}.mask.png"
    assert truth["path"] in names and np.array_equal(api_run.load(truth, as_numpy=True), mask)
    pred = row["seg"]["masks"]["pred"]  # W&B's default labels: class_<id> of each id present
    assert pred["class_labels"] == {"0": "class_0", "1": "class_1", "2": "class_2"}
    box_ref = row["seg"]["boxes"]["predictions"]
    assert set(box_ref) == {"_type", "sha256", "size", "path"} and box_ref["_type"] == "boxes2D"
    assert box_ref["path"] == f"media/metadata/boxes2D/seg_0_{box_ref['sha256'][:20]}.boxes2D.json"
    doc = api_run.load(box_ref)
    assert doc["class_labels"] == {"1": "person", "2": "car"}
    first, second = doc["box_data"]
    assert first["position"] == {"minX": 0.1, "maxX": 0.4, "minY": 0.2, "maxY": 0.5}
    assert (first["class_id"], first["box_caption"], first["scores"]) == (2, "car", {"acc": 0.5})
    assert second["position"] == {"middle": [20.0, 10.0], "width": 8.0, "height": 4.0}
    assert second["domain"] == "pixel" and box_ref["path"] in names
    batch = row["batch"]
    assert batch["all_masks"][1] is None and batch["all_masks"][0]["truth"]["path"] in names
    cell = api_run.load(row["t"])["im"][0]  # a table's image cell keeps its mask, as a file
    assert cell["masks"]["truth"]["path"] in names
    assert np.array_equal(api_run.load(cell["masks"]["truth"], as_numpy=True), mask)


def test_videos_as_gif_and_mp4(root: Path) -> None:
    import imageio.v3 as iio
    from PIL import Image as PILImage

    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], np.uint8)
    frames = np.stack([np.broadcast_to(c, (30, 40, 3)) for c in colors]).transpose(0, 3, 1, 2)
    ramp = np.linspace(0, 255, 33 * 31, dtype=np.uint8).reshape(31, 33)
    odd = np.stack([np.stack([ramp] * 3) for _ in range(6)])  # 6 x 3 x 31 x 33
    run = runyard.init(project="media")
    run.log(
        {
            "gif": Video(np.ascontiguousarray(frames), fps=5, caption="solid"),
            "mp4": Video(odd, fps=10, format="mp4"),
        }
    )
    run.finish()
    api_run = Api(dir=root).run(run.path)
    (row,) = rows(root, run)
    gif = row["gif"]
    assert gif["path"].endswith(".gif") and gif["caption"] == "solid"
    with PILImage.open(api_run.open_file(gif["path"])) as im:
        assert im.n_frames == 4 and im.info["duration"] == 200
        for i in range(4):
            im.seek(i)
            assert np.array_equal(np.asarray(im.convert("RGB")), frames[i].transpose(1, 2, 0))
    mp4 = row["mp4"]
    data = api_run.load(mp4)
    assert mp4["path"].endswith(".mp4") and data[4:8] == b"ftyp"
    back = iio.imread(data, extension=".mp4", index=None)
    assert back.shape == (6, mp4["height"], mp4["width"], 3)
    assert (mp4["width"], mp4["height"]) == (34, 32)  # H.264 (yuv420p) needs even sizes: padded
    assert np.abs(back[0, :31, :33, 0].astype(int) - ramp).mean() < 8


def test_plotly_and_matplotlib_figures(root: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    line, ax = plt.subplots(figsize=(3, 2), dpi=50)
    ax.plot([1, 2, 3], [3, 1, 2])
    shown, ax2 = plt.subplots(figsize=(3, 2), dpi=50)
    ax2.imshow(IMG)
    polar = plt.figure(figsize=(3, 2), dpi=50)
    polar.add_subplot(projection="polar").plot([0, 1], [1, 2])  # plotly cannot convert it
    run = runyard.init(project="media")
    run.log(
        {
            "plotly": go.Figure(go.Scatter(x=[1, 2, 3], y=[4, 1, 2])),
            "line": line,
            "shown": shown,
            "polar": polar,
            "as_image": Image(line),
        }
    )
    run.finish()
    api_run = Api(dir=root).run(run.path)
    (row,) = rows(root, run)
    fig = row["plotly"]
    assert fig["_type"] == "plotly-file" and fig["path"].endswith(".plotly.json")
    doc = api_run.load(fig)
    assert doc["data"][0]["x"] == [1, 2, 3] and doc["data"][0]["type"] == "scatter"
    # A matplotlib figure plotly converts is a plotly chart (W&B's rule) ...
    assert row["line"]["_type"] == "plotly-file"
    assert api_run.load(row["line"])["data"][0]["y"] == [3, 1, 2]
    # ... one it cannot convert is a PNG of the figure (W&B raises) ...
    assert row["polar"]["_type"] == "image-file" and row["polar"]["width"] == 150
    # ... and one showing images is an image (W&B's rule), never converted.
    assert row["shown"]["_type"] == "image-file"
    assert (row["shown"]["width"], row["shown"]["height"]) == (150, 100)
    assert api_run.load(row["as_image"], as_numpy=True).shape == (100, 150, 4)
    plt.close("all")


def test_tables_from_dataframes_with_image_cells_logged_again_with_more_rows(root: Path) -> None:
    import pandas as pd

    df = pd.DataFrame(
        {
            "id": [1, 2],
            "score": [0.5, np.nan],
            "label": ["a", "b"],
            "img": [Image(IMG), Image(IMG[::-1])],
        }
    )
    run = runyard.init(project="media")
    run.log({"df": df, "table": Table(dataframe=df)})
    grown = Table(columns=["step", "img"])
    for step in range(3):
        grown.add_data(step, Image(IMG[step:]))
        run.log({"grown": grown})
    run.finish()
    api_run = Api(dir=root).run(run.path)
    first, *later = rows(root, run)
    for key in ("df", "table"):
        ref = first[key]
        assert ref["_type"] == "table-file" and (ref["ncols"], ref["nrows"]) == (4, 2)
        back = api_run.load(ref)
        assert list(back.columns) == ["id", "score", "label", "img"]
        assert back["id"].tolist() == [1, 2] and back["label"].tolist() == ["a", "b"]
        assert back["score"][0] == 0.5 and np.isnan(back["score"][1])
        assert np.array_equal(api_run.load(back["img"][1], as_numpy=True), IMG[::-1])
    sizes = [len(api_run.load(r["grown"])) for r in later]
    assert sizes == [1, 2, 3]
    last = api_run.load(api_run.summary["grown"])
    assert np.array_equal(api_run.load(last["img"][2], as_numpy=True), IMG[2:])
