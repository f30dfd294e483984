"""Conformance with the oldest wandb client runyard supports (0.19.11), beside the pinned one.

The dev extra pins the newest client (tests/test_wandb_compat.py). Clients in the field are
older: 0.19 probes the server's schema (``__type`` introspection) before it logs media, tables
or artifacts, and crashes on a server that cannot answer. It lives in a venv of its own
(``.venv-wandb-oldest``, which ``make test`` builds: two wandb versions cannot share one venv),
and one script plays the common path against a real runyard server with auth on; the tests
read back through runyard's own ``Api`` what arrived.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runyard.api import Api
from tests.serverproc import create_admin_key, create_key, running_server
from tests.wandbclient import wandb_env

pytestmark = pytest.mark.slow

OLDEST = "0.19.11"
PYTHON = Path(__file__).resolve().parent.parent / ".venv-wandb-oldest" / "bin" / "python"

SCRIPT = """
import pathlib
import numpy as np
import wandb

assert wandb.__version__ == "%(version)s", wandb.__version__
run = wandb.init(project="old", id="o1", config={"lr": 0.1, "model": {"depth": 3}})
for i in range(20):
    wandb.log({"loss": 1.0 / (i + 1), "acc": i / 20})
pixels = np.zeros((4, 6, 3), dtype="uint8")
pixels[0, 0] = 255
wandb.log({"img": wandb.Image(pixels, caption="first"),
           "hist": wandb.Histogram([1, 2, 2, 3, 3, 3]),
           "tbl": wandb.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])})
run.summary["best"] = 0.9
print("hello from the old client")
weights = pathlib.Path("weights.bin")
weights.write_bytes(b"abc" * 1000)
art = wandb.Artifact("model", type="model")
art.add_file(str(weights))
run.log_artifact(art, aliases=["best"])
run.finish()

run = wandb.init(project="old", id="o2")
folder = run.use_artifact("model:best").download()
print("DOWNLOADED", sorted(p.name for p in pathlib.Path(folder).iterdir()))
run.finish()

run = wandb.init(project="old", id="o1", resume="must")
wandb.log({"loss": 0.01})
run.finish()

api = wandb.Api()
r = api.run("alice/old/o1")
print("API", r.state, r.summary.get("loss"), len(list(r.scan_history(keys=["loss"]))))
print("RUNS", sorted(x.id for x in api.runs("alice/old")))
"""


@dataclass
class Played:
    api: Api
    stdout: str


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    if not PYTHON.exists():
        pytest.fail(
            f"the oldest supported wandb client ({OLDEST}) is not installed: run "
            f"`make .venv-wandb-oldest/.installed` (make test builds it)"
        )
    root = tmp_path_factory.mktemp("wandb-oldest")
    store_url = f"sqlite:///{root / 'runyard.db'}"
    admin = create_admin_key(store_url)
    alice = create_key(store_url, "alice")
    home = root / "home"
    home.mkdir()
    (home / "train.py").write_text(SCRIPT % {"version": OLDEST})
    with running_server(store_url, auth=True) as server:
        env = wandb_env(home, server.url, alice)
        env["PATH"] = f"{PYTHON.parent}:{env['PATH']}"
        proc = subprocess.run(
            [str(PYTHON), "train.py"],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        yield Played(Api(store=server.url, api_key=admin, recover=False), proc.stdout)


def test_scalars_config_summary_and_console_arrive(played: Played) -> None:
    run = played.api.run("alice/old/o1")
    assert run.state == "finished"
    assert run.config == {"lr": 0.1, "model": {"depth": 3}}
    assert run.summary["best"] == 0.9
    losses = [row["loss"] for row in run.scan_history(keys=["loss"])]
    # 20 rows, then one more from the resumed session, after them
    assert losses[:20] == pytest.approx([1.0 / (i + 1) for i in range(20)])
    assert losses[20:] == [0.01]
    assert run.record.meta["wandb"]["client"] == f"wandb {OLDEST}"
    assert any("hello from the old client" in text for _, _, text in run.console())


def test_media_and_tables_arrive_as_runyard_media(played: Played) -> None:
    run = played.api.run("alice/old/o1")
    image = run.summary["img"]
    assert (image["_type"], image["width"], image["height"]) == ("image-file", 6, 4)
    pixels = run.load(image, as_numpy=True)
    assert pixels.shape == (4, 6, 3) and pixels[0, 0].tolist() == [255, 255, 255]
    assert pixels[1:].max() == 0
    hist = run.summary["hist"]
    assert hist["_type"] == "histogram" and sum(hist["values"]) == 6
    table = run.load(run.summary["tbl"])
    assert table.to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}


def test_artifacts_log_use_download_and_api_reads(played: Played) -> None:
    assert "DOWNLOADED ['weights.bin']" in played.stdout
    assert "API finished 0.01 21" in played.stdout
    assert "RUNS ['o1', 'o2']" in played.stdout
