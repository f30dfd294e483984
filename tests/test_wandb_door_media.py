"""Audio, Video, plotly figures and Html logged by the real ``wandb`` client through the W&B door.

The same script logs the same values twice against one ``runyard server --auth``: once with
the real wandb client (pinned in the dev extra; moviepy encodes its videos), once with
``import runyard as wandb``. The tests read both runs back through runyard's ``Api`` and
check that

* every media file the wandb client wrote into its run folder is a run file in runyard with
  the same bytes, and the history references name those files;
* the loader helpers give back what was logged: the audio samples and their rate (read from
  the WAV file: wandb's reference carries no ``sample_rate``/``duration``), the video frames,
  the HTML, the plotly figure's JSON;
* wandb's references have the shape runyard's own SDK writes (docs/media.md), apart from the
  documented difference (docs/wandb-compat.md);
* the dashboard draws the door-logged values (Debian's chromium).
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runyard.api import Api, ApiRun
from tests.serverproc import ServerProc, create_key, running_server
from tests.test_dashboard import browser, shot  # noqa: F401 - the shared chromium fixture
from tests.wandbclient import wandb_env

pytestmark = pytest.mark.slow

#: The logged inputs, built the same way by the script (both clients) and by the tests.
INPUTS = """
import numpy as np

RATE, RATE2, FILE_RATE = 8000, 16000, 22050
WAVE = (0.5 * np.sin(np.linspace(0, 400, 4000))).astype(np.float32)  # 0.5 s at 8 kHz
WAVE2 = (0.25 * np.cos(np.linspace(0, 90, 1600))).astype(np.float32)  # 0.1 s at 16 kHz
STEREO = np.stack([WAVE[:2205], -WAVE[:2205]], axis=1)  # 0.1 s at 22.05 kHz, 2 channels
COLORS = [(200, 30, 30), (30, 160, 60), (40, 60, 210), (250, 250, 250)]
FRAMES = np.zeros((4, 3, 16, 24), dtype=np.uint8)  # T x C x H x W, one colour a frame
for t, colour in enumerate(COLORS):
    FRAMES[t] = np.asarray(colour, dtype=np.uint8)[:, None, None]
PAGE = "<h1>epoch 3</h1><p id='door'>logged through the door</p>"
FIG_X, FIG_Y = [1, 2, 3], [3.0, 1.0, 2.0]
"""

SCRIPT = (
    """
import sys
from pathlib import Path

import plotly.graph_objects as go
import soundfile
from PIL import Image as PILImage
"""
    + INPUTS
    + """
if sys.argv[1] == "wandb":
    import wandb
else:
    import runyard as wandb

here = Path.cwd()
soundfile.write(here / "tone.wav", STEREO, FILE_RATE, subtype="PCM_16")
gif_frames = [PILImage.fromarray(f.transpose(1, 2, 0)) for f in FRAMES]
gif_frames[0].save(here / "clip.gif", save_all=True, append_images=gif_frames[1:], duration=250)
fig = go.Figure(go.Scatter(x=FIG_X, y=FIG_Y, mode="lines+markers", name="trace a"))
fig.update_layout(title="door figure")

run = wandb.init(entity="lab", project="media", id=sys.argv[2], name=sys.argv[2])
run.log({"loss": 0.5}, step=0)
run.log(
    {
        "tone": wandb.Audio(WAVE, sample_rate=RATE, caption="a tone"),
        "tone_file": wandb.Audio(str(here / "tone.wav"), caption="from a file"),
        "tones": [
            wandb.Audio(WAVE, sample_rate=RATE, caption="low"),
            wandb.Audio(WAVE2, sample_rate=RATE2, caption="high"),
        ],
        "clip": wandb.Video(FRAMES, fps=4, format="gif", caption="a clip"),
        "clip_file": wandb.Video(str(here / "clip.gif"), caption="from a file"),
        "clips": [wandb.Video(FRAMES, fps=4, format="gif"), wandb.Video(FRAMES[::-1], fps=4, format="gif")],
        "page": wandb.Html(PAGE),
        "raw_page": wandb.Html(PAGE, inject=False),
        "pages": [wandb.Html("<p>a</p>", inject=False), wandb.Html("<p>b</p>", inject=False)],
        "fig": fig,
        "plot": wandb.Plotly(fig),
        "loss": 0.25,
    },
    step=1,
)
run.finish()
print("RUN", run.dir if sys.argv[1] == "wandb" else "", flush=True)
"""
)

WANDB_RUN, NATIVE_RUN = "doorclient", "nativesdk"

MEDIA_KEYS = (
    "tone",
    "tone_file",
    "tones",
    "clip",
    "clip_file",
    "clips",
    "page",
    "raw_page",
    "pages",
    "fig",
    "plot",
)


def inputs() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(INPUTS, namespace)
    return namespace


class Logged:
    """The two runs (``wandb`` through the door, runyard's own SDK) and what the client wrote."""

    def __init__(self, server: ServerProc, key: str, wandb_dir: Path, folder: Path) -> None:
        self.server = server
        self.key = key
        self.wandb_dir = wandb_dir  # the wandb run's files folder (media/... under it)
        self.folder = folder

    def given(self, run_id: str, name: str) -> bytes:
        """A file the script wrote and logged by its path (``tone.wav``, ``clip.gif``)."""
        return (self.folder / ("wandb" if run_id == WANDB_RUN else "runyard") / name).read_bytes()

    def api(self) -> Api:
        return Api(store=self.server.url, api_key=self.key, recover=False)

    def run(self, run_id: str) -> ApiRun:
        return self.api().run(f"lab/media/{run_id}")

    def row(self, run_id: str) -> dict[str, Any]:
        rows = self.run(run_id).history(pandas=False, samples=None)
        assert [r["_step"] for r in rows] == [0, 1], rows
        row: dict[str, Any] = rows[1]
        return row

    def read(self, run_id: str, name: str) -> bytes:
        with self.run(run_id).open_file(name) as fh:
            return fh.read()


def _log(client: str, run_id: str, home: Path, server: ServerProc, key: str) -> str:
    """Run the script with ``client`` (``wandb`` or ``runyard``) in a fresh interpreter."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "media.py").write_text(textwrap.dedent(SCRIPT))
    extra = {
        "RUNYARD_BASE_URL": server.url,
        "RUNYARD_API_KEY": key,
        "RUNYARD_SILENT": "true",
        "RUNYARD_CONSOLE": "off",
        "RUNYARD_DISABLE_STATS": "true",
        "RUNYARD_DISABLE_GIT": "true",
    }
    proc = subprocess.run(
        [sys.executable, "media.py", client, run_id],
        cwd=home,
        env=wandb_env(home, server.url, key, extra),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{client} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout.split("RUN", 1)[1].strip()


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    folder = tmp_path_factory.mktemp("door-media")
    url = f"sqlite:///{folder / 'store.db'}"
    key = create_key(url, "lab")
    with running_server(url, auth=True) as server:
        wandb_dir = _log("wandb", WANDB_RUN, folder / "wandb", server, key)
        _log("runyard", NATIVE_RUN, folder / "runyard", server, key)
        yield Logged(server, key, Path(wandb_dir), folder)


def _file_refs(value: Any) -> list[dict[str, Any]]:
    """The file references in a value: itself, or the list form's elements."""
    if not isinstance(value, dict):
        return []
    if "path" in value:
        return [value]
    for field in ("audio", "videos", "html"):
        if isinstance(value.get(field), list):
            return [ref for ref in value[field] if isinstance(ref, dict)]
    return []


def _gif_frames(data: bytes) -> list[np.ndarray]:
    from PIL import Image as PILImage

    frames = []
    with PILImage.open(io.BytesIO(data)) as gif:
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(np.asarray(gif.convert("RGB")))
    return frames


def test_every_media_file_the_client_wrote_is_a_run_file_with_the_same_bytes(
    logged: Logged,
) -> None:
    written = {
        p.relative_to(logged.wandb_dir).as_posix(): p.read_bytes()
        for p in (logged.wandb_dir / "media").rglob("*")
        if p.is_file()
    }
    assert len(written) >= 13, sorted(written)  # 4 audio, 4 videos, 4 html, 2 plotly
    run = logged.run(WANDB_RUN)
    stored = {f.name for f in run.files()}
    assert set(written) <= stored, sorted(set(written) - stored)
    for name, content in written.items():
        assert logged.read(WANDB_RUN, name) == content, name
    row = logged.row(WANDB_RUN)
    referenced = {ref["path"]: ref for key in MEDIA_KEYS for ref in _file_refs(row[key])}
    assert set(referenced) == set(written)
    for name, ref in referenced.items():
        assert ref["size"] == len(written[name])
        assert ref["sha256"] == hashlib.sha256(written[name]).hexdigest()
    # the summary keeps the last reference of each key, as for runyard's own runs
    assert run.summary["clip"]["path"] == row["clip"]["path"]


@pytest.mark.parametrize("run_id", [WANDB_RUN, NATIVE_RUN])
def test_audio_samples_and_rate_come_back_from_the_file(logged: Logged, run_id: str) -> None:
    data = inputs()
    run = logged.run(run_id)
    row = logged.row(run_id)
    samples, rate = run.load(row["tone"], as_numpy=True)
    assert rate == data["RATE"]
    np.testing.assert_allclose(samples, data["WAVE"], atol=1.5 / 32767)
    assert row["tone"]["caption"] == "a tone"
    assert run.load(row["tone"])[:4] == b"RIFF"
    assert run.load(row["tone_file"]) == logged.given(run_id, "tone.wav")  # byte for byte
    samples, rate = run.load(row["tone_file"], as_numpy=True)
    assert rate == data["FILE_RATE"] and samples.shape == data["STEREO"].shape
    np.testing.assert_allclose(samples, data["STEREO"], atol=1.5 / 32767)
    assert row["tone_file"]["caption"] == "from a file"
    # a list of clips: W&B's "audio" form, its rates and durations
    tones = row["tones"]
    assert tones["_type"] == "audio" and tones["count"] == 2
    assert tones["sampleRates"] == [data["RATE"], data["RATE2"]]
    assert tones["durations"] == pytest.approx([0.5, 0.1])
    assert tones["captions"] == ["low", "high"]
    (low, low_rate), (high, high_rate) = run.load(tones, as_numpy=True)
    assert (low_rate, high_rate) == (data["RATE"], data["RATE2"])
    np.testing.assert_allclose(low, data["WAVE"], atol=1.5 / 32767)
    np.testing.assert_allclose(high, data["WAVE2"], atol=1.5 / 32767)


@pytest.mark.parametrize("run_id", [WANDB_RUN, NATIVE_RUN])
def test_video_frames_come_back(logged: Logged, run_id: str) -> None:
    data = inputs()
    run = logged.run(run_id)
    row = logged.row(run_id)
    clip = row["clip"]
    assert clip["_type"] == "video-file" and clip["path"].endswith(".gif")
    assert (clip["width"], clip["height"]) == (24, 16) and clip["caption"] == "a clip"
    frames = _gif_frames(run.load(clip))
    assert len(frames) == 4
    for frame, colour in zip(frames, data["COLORS"], strict=True):
        assert frame.shape == (16, 24, 3)
        assert (frame == np.asarray(colour, dtype=np.uint8)).all(), (frame[0, 0], colour)
    assert row["clip_file"]["caption"] == "from a file"
    assert run.load(row["clip_file"]) == logged.given(run_id, "clip.gif")
    assert [f[0, 0].tolist() for f in _gif_frames(run.load(row["clip_file"]))] == [
        list(c) for c in data["COLORS"]
    ]
    clips = row["clips"]
    assert clips["_type"] == "videos" and clips["count"] == 2
    first, second = (_gif_frames(content) for content in run.load(clips))
    assert [f[0, 0].tolist() for f in first] == [f[0, 0].tolist() for f in reversed(second)]


@pytest.mark.parametrize("run_id", [WANDB_RUN, NATIVE_RUN])
def test_html_and_plotly_figures_come_back(logged: Logged, run_id: str) -> None:
    data = inputs()
    run = logged.run(run_id)
    row = logged.row(run_id)
    assert row["page"]["_type"] == "html-file"
    assert data["PAGE"] in run.load(row["page"]).decode()
    assert run.load(row["raw_page"]) == data["PAGE"].encode()
    assert row["pages"]["_type"] == "html" and row["pages"]["count"] == 2
    assert run.load(row["pages"]) == [b"<p>a</p>", b"<p>b</p>"]
    for key in ("fig", "plot"):
        assert row[key]["_type"] == "plotly-file" and row[key]["path"].endswith(".plotly.json")
        figure = run.load(row[key])
        (trace,) = figure["data"]
        assert (trace["type"], trace["x"], trace["y"]) == ("scatter", data["FIG_X"], data["FIG_Y"])
        assert trace["name"] == "trace a" and figure["layout"]["title"]["text"] == "door figure"


def test_references_have_the_shape_runyards_sdk_writes(logged: Logged) -> None:
    """Field for field, the references of the wandb run and of the runyard run agree, and the
    files are the same bytes, except the documented differences (docs/wandb-compat.md):
    wandb's reference of an audio array has no ``sample_rate`` and ``duration`` (in a list,
    ``sampleRates`` and ``durations`` are there; runyard's readers take both from the file),
    a list of videos without captions has ``captions:
    false``, and wandb's ``Html`` (``inject=True``, its default) adds W&B's stylesheet to the
    page."""
    door, native = logged.row(WANDB_RUN), logged.row(NATIVE_RUN)
    only_native = {"tone": {"sample_rate", "duration"}}
    only_door = {"clips": {"captions"}}
    audio_array = {"sample_rate", "duration"}  # in each clip of an array, single or listed
    assert door["clips"]["captions"] is False
    for key in MEDIA_KEYS:
        ours, theirs = native[key], door[key]
        assert theirs["_type"] == ours["_type"], key
        assert set(ours) - set(theirs) == only_native.get(key, set()), key
        assert set(theirs) - set(ours) == only_door.get(key, set()), key
        pairs = list(zip(_file_refs(theirs), _file_refs(ours), strict=True))
        assert pairs, key
        for a, b in pairs:
            assert set(b) - set(a) == (audio_array if key in ("tone", "tones") else set()), key
            assert set(a) - set(b) == set(), (key, a, b)
            # media/<subdir>/<key>_<step>_<sha256[:20]><ext>, the step being each client's own
            assert _name_shape(a["path"]) == f"{key}_{a['sha256'][:20]}", key
            assert _name_shape(b["path"]) == f"{key}_{b['sha256'][:20]}", key
            assert (a["sha256"] == b["sha256"]) == (key != "page"), key
            assert Path(a["path"]).parent == Path(b["path"]).parent, key
    wandb_page = logged.run(WANDB_RUN).load(door["page"]).decode()
    assert 'href="https://app.wandb.ai/normalize.css"' in wandb_page
    assert logged.run(NATIVE_RUN).load(native["page"]) == inputs()["PAGE"].encode()


def _name_shape(path: str) -> str:
    key, _step, rest = Path(path).name.rsplit("_", 2)
    return f"{key}_{rest.split('.', 1)[0]}"


def test_the_dashboard_draws_door_logged_media(browser: Any, logged: Logged) -> None:  # noqa: F811
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, base_url=logged.server.url
    )
    # the key where the dashboard keeps it (not in the HTML values' sandboxed frames)
    context.add_init_script(
        f"if (window === window.top) localStorage.setItem('runyard.apiKey', {logged.key!r});"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(15_000)
    try:
        page.goto(f"/#/r/lab/media/{WANDB_RUN}")
        page.wait_for_selector("#panel-charts[data-ready='true']")
        kinds = dict(
            page.eval_on_selector_all(
                "#run-charts figure.chart-panel",
                "fs => fs.map(f => [f.dataset.metric, f.dataset.kind || 'line'])",
            )
        )
        assert {k: kinds.get(k) for k in ("tone", "tones", "clip", "clips", "page", "fig")} == {
            "tone": "audio",
            "tones": "audio",
            "clip": "video",
            "clips": "video",
            "page": "html",
            "fig": "plotly",
        }
        audio = "figure[data-metric='tone'] .media-item[data-loaded='true'] audio"
        page.wait_for_selector(audio, state="attached")
        duration = page.eval_on_selector(
            audio,
            "a => a.readyState >= 1 ? a.duration : new Promise(r => a.addEventListener("
            "'loadedmetadata', () => r(a.duration), {once: true}))",
        )
        assert duration == pytest.approx(0.5, abs=0.01)  # the reference has no duration
        gif = "figure[data-metric='clip'] .media-item[data-format='gif'][data-loaded='true'] img"
        page.wait_for_selector(gif)
        assert page.eval_on_selector(gif, "i => [i.naturalWidth, i.naturalHeight]") == [24, 16]
        frame = "figure[data-metric='raw_page'] .media-item[data-loaded='true'] iframe.media-html"
        page.wait_for_selector(frame)
        assert page.get_attribute(frame, "srcdoc") == inputs()["PAGE"]
        plot = "figure[data-metric='fig'] .media-item[data-loaded='true']"
        page.wait_for_selector(plot, timeout=30_000)
        assert page.locator(f"{plot} .scatterlayer .trace .point").count() == 3
        page.locator("figure[data-metric='fig']").scroll_into_view_if_needed()
        shot(page, "door-media-plotly")
    finally:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"
