"""System metrics (runyard.system) and alerts (run.alert, runyard.alerts): recorded by the SDK,
stored apart from the history, read back through Api and the server, and alerts posted to a
webhook served here on 127.0.0.1.

No NVIDIA GPU is available to these tests: the NVML path is checked as far as a machine without
a driver allows (nvidia-ml-py is installed, the driver's library is not: no GPU metrics, no
error), and the metric names it produces are checked against a stand-in NVML module.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import runyard
from runyard.alerts import AlertDispatcher, WebhookNotifier
from runyard.server.batch import parse_batch
from runyard.server.errors import ApiError
from runyard.store.base import JournalBatch
from runyard.store.sql import SQLStore
from runyard.system.nvidia import NvidiaCollector
from tests.conftest import api
from tests.serverproc import running_server

FAST = {"stats_sampling_interval": 0.1}


@pytest.fixture(autouse=True)
def _own_store(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's store, even if some other process left a ``.runyard`` folder in a parent of
    the test's folder (the walk up from the working directory would find that one)."""
    monkeypatch.setenv("RUNYARD_DIR", str(root))


# -- a webhook receiver ---------------------------------------------------------------------------


class Webhook:
    """An HTTP server on 127.0.0.1 that records each POSTed JSON body; ``statuses`` are the
    answers to give, in order (200 once they run out)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        self._cond = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length))
                with owner._cond:
                    status = owner.statuses.pop(0) if owner.statuses else 200
                    owner.bodies.append(body)
                    owner._cond.notify_all()
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.bodies) >= count, timeout)
            return list(self.bodies)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


# -- system metrics through the SDK ---------------------------------------------------------------

HOST_KEYS = {
    "system.cpu",
    "system.cpu.0.cpu_percent",
    "system.proc.cpu.threads",
    "system.proc.memory.rssMB",
    "system.proc.memory.percent",
    "system.proc.memory.availableMB",
    "system.memory_percent",
    "system.disk./.usagePercent",
    "system.disk./.usageGB",
    "system.network.sent",
    "system.network.recv",
}


def test_system_metrics_are_a_series_apart_from_the_history(
    root: Path, store_url: str | None
) -> None:
    run = runyard.init(project="sys", settings=FAST)
    for i in range(3):
        run.log({"loss": 1.0 / (i + 1)})
    assert run._system is not None and run._system.wait_for_samples(3, timeout=20)
    run.finish()

    stored = api(root).run(run.id)
    system = stored.history(stream="system", pandas=False)
    assert len(system) >= 2
    assert set(system[0]) >= HOST_KEYS
    assert not any(k.startswith("system.gpu") for k in system[0])  # no GPU on this machine
    stamps = [row["_timestamp"] for row in system]
    assert stamps == sorted(stamps) and all(row["_runtime"] >= 0 for row in system)
    assert 0 < system[-1]["system.proc.memory.rssMB"] < 1e6
    assert 0 <= system[-1]["system.disk./.usagePercent"] <= 100
    # W&B's internal name for the stream works too, and keys narrow it
    narrow = stored.history(stream="events", keys=["system.cpu"], pandas=False)
    assert narrow and set(narrow[0]) == {"_timestamp", "_runtime", "system.cpu"}
    # the history has the logged steps only: no system keys, no extra rows
    history = stored.history(pandas=False)
    assert [row["_step"] for row in history] == [0, 1, 2]
    assert all(not k.startswith("system") for row in history for k in row)
    assert "system.cpu" not in stored.metric_names()
    with pytest.raises(ValueError, match="stream='bogus'"):
        stored.history(stream="bogus")


@pytest.mark.parametrize(
    ("settings", "env"),
    [
        ({"x_disable_stats": True}, {}),
        ({"_disable_stats": True}, {}),
        (runyard.Settings(disable_stats=True), {}),
        ({}, {"RUNYARD_DISABLE_STATS": "true"}),
    ],
)
def test_system_metrics_can_be_switched_off(
    root: Path, monkeypatch: pytest.MonkeyPatch, settings: Any, env: dict[str, str]
) -> None:
    monkeypatch.setenv("RUNYARD_STATS_SAMPLING_INTERVAL", "0.1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    run = runyard.init(project="sys", settings=settings)
    assert run._system is None
    run.log({"loss": 1.0})
    run.finish()
    assert api(root).run(run.id).history(stream="system", pandas=False) == []


def test_a_bad_sampling_interval_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"stats_sampling_interval=0.01 .*>= 0.1"):
        runyard.init(project="sys", settings={"x_stats_sampling_interval": 0.01})
    monkeypatch.setenv("RUNYARD_STATS_SAMPLING_INTERVAL", "often")
    with pytest.raises(ValueError, match="RUNYARD_STATS_SAMPLING_INTERVAL='often'"):
        runyard.init(project="sys")


# -- the store ------------------------------------------------------------------------------------


def _stats(seq: int, t: float, **values: float) -> tuple[int, str, dict[str, Any]]:
    return (seq, "stats", {"_timestamp": t, "_runtime": t - 1000.0, **values})


def test_store_keeps_samples_in_order_downsamples_and_resumes(store: SQLStore) -> None:
    header = {"entity": "e", "project": "p", "run_id": "r1", "name": "r1"}
    records = [(1, "run", header)] + [
        _stats(i + 2, 1000.0 + i, **{"system.cpu": float(i), "system.gpu.0.temp": 50.0 + i % 7})
        for i in range(500)
    ]
    records.append((502, "row", {"_step": 0, "loss": 1.0}))
    store.apply(JournalBatch("j1", header, records))
    run = store.find_run("e", "p", "r1")
    assert run is not None
    full = store.system_metrics(run.pk)
    assert (full.total, full.downsampled, len(full.rows)) == (500, False, 500)
    assert [r["system.cpu"] for r in full.rows] == [float(i) for i in range(500)]
    some = store.system_metrics(run.pk, samples=10)
    assert some.downsampled and len(some.rows) == 10
    assert some.rows[0]["system.cpu"] == 0.0 and some.rows[-1]["system.cpu"] == 499.0
    only = store.system_metrics(run.pk, samples=3, keys=["system.gpu.0.temp"])
    assert [set(r) for r in only.rows] == [{"_timestamp", "_runtime", "system.gpu.0.temp"}] * 3
    # a resumed run (a new journal) continues the series; the history is untouched
    resumed = {**header, "resume": True}
    store.apply(
        JournalBatch("j2", resumed, [(1, "run", resumed), _stats(2, 5000.0, **{"system.cpu": 7.0})])
    )
    after = store.system_metrics(run.pk)
    assert after.total == 501 and after.rows[-1]["system.cpu"] == 7.0
    assert [r["_step"] for r in store.history(run.pk)] == [0]


def test_alert_rate_limit_per_title(store: SQLStore) -> None:
    header = {"entity": "e", "project": "p", "run_id": "r1"}

    def alert(seq: int, title: str, t: float, wait: float = 60.0) -> tuple[int, str, Any]:
        body = {"title": title, "text": f"at {t}", "level": "WARN", "wait_duration": wait}
        return (seq, "alert", {**body, "_timestamp": t, "_runtime": 1.0})

    records = [
        (1, "run", header),
        alert(2, "diverged", 100.0),
        alert(3, "diverged", 130.0),  # within 60 s of the notified one
        alert(4, "nan", 131.0),  # another title
        alert(5, "diverged", 161.0),  # 61 s after the notified one
        alert(6, "diverged", 170.0, wait=0.0),  # wait_duration 0: never suppressed
    ]
    store.apply(JournalBatch("j1", header, records))
    run = store.find_run("e", "p", "r1")
    assert run is not None
    got = [(a.title, a.timestamp, a.delivery) for a in store.alerts(run.pk)]
    assert got == [
        ("diverged", 100.0, "pending"),
        ("diverged", 130.0, "suppressed"),
        ("nan", 131.0, "pending"),
        ("diverged", 161.0, "pending"),
        ("diverged", 170.0, "pending"),
    ]


def test_dispatcher_retries_then_gives_up(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'store.db'}")
    header = {"entity": "e", "project": "p", "run_id": "r1"}
    now = __import__("time").time()
    records = [(1, "run", header)] + [
        (
            i + 2,
            "alert",
            {
                "title": t,
                "text": "x",
                "level": "ERROR",
                "wait_duration": 60.0,
                "_timestamp": now,
                "_runtime": 1.0,
            },
        )
        for i, t in enumerate(["flaky", "refused"])
    ]
    store.apply(JournalBatch("j1", header, records))
    hook = Webhook(statuses=[503, 404])  # flaky: 503 then 200; refused: 404 (final)
    try:
        dispatcher = AlertDispatcher(
            store, WebhookNotifier(hook.url), poll_interval=0.05, retry_base=0.05
        )
        bodies = hook.wait_for(3)
        dispatcher.close(timeout=5)
    finally:
        hook.close()
    assert [b["attachments"][0]["title"] for b in bodies] == ["flaky", "refused", "flaky"]
    run = store.find_run("e", "p", "r1")
    assert run is not None
    states = {a.title: (a.delivery, a.attempts, a.error) for a in store.alerts(run.pk)}
    assert states["flaky"][:2] == ("sent", 2)
    assert states["refused"][0] == "failed" and "404" in (states["refused"][2] or "")
    store.close()


# -- validation -----------------------------------------------------------------------------------


def _batch(*records: Any) -> bytes:
    header = {"entity": "e", "project": "p", "run_id": "r"}
    return json.dumps({"header": header, "records": [[1, "run", {}], *records]}).encode()


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ([2, "stats", {"system.cpu": 1.0}], "stats._timestamp must be a finite number"),
        ([2, "stats", {"_timestamp": 1.0, "system.cpu": "hot"}], "stats value of 'system.cpu'"),
        ([2, "stats", [1, 2]], "stats is an object"),
        (
            [
                2,
                "alert",
                {"title": "", "text": "", "level": "INFO", "wait_duration": 1, "_timestamp": 1.0},
            ],
            "alert.title must be a string of 1 to 256",
        ),
        (
            [
                2,
                "alert",
                {"title": "t", "text": "x", "level": "LOUD", "wait_duration": 1, "_timestamp": 1.0},
            ],
            "alert.level must be one of INFO, WARN, ERROR",
        ),
        (
            [
                2,
                "alert",
                {
                    "title": "t",
                    "text": "x",
                    "level": "INFO",
                    "wait_duration": -1,
                    "_timestamp": 1.0,
                },
            ],
            "alert.wait_duration",
        ),
        (
            [
                2,
                "alert",
                {
                    "title": "t",
                    "text": None,
                    "level": "INFO",
                    "wait_duration": 1,
                    "_timestamp": 1.0,
                },
            ],
            "alert.text must be a string",
        ),
    ],
)
def test_server_refuses_malformed_records(record: Any, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_batch("j", _batch(record))
    assert caught.value.status_code == 422 and message in str(caught.value.detail)


def test_alert_arguments_are_checked_like_wandb(root: Path) -> None:
    run = runyard.init(project="sys", settings={"disable_stats": True})
    with pytest.raises(ValueError, match="level must be one of 'INFO', 'WARN', or 'ERROR'"):
        run.alert("t", "x", level="LOUD")
    with pytest.raises(TypeError, match="wait_duration must be an int, float, or datetime"):
        run.alert("t", "x", wait_duration="soon")
    with pytest.raises(ValueError, match="at most 256"):
        run.alert("t" * 300, "x")
    run.finish()
    with pytest.raises(runyard.RunFinishedError):
        run.alert("t", "x")
    assert api(root).run(run.id).alerts() == []


# -- GPUs -----------------------------------------------------------------------------------------


def test_no_nvidia_driver_means_no_gpu_metrics_and_no_error() -> None:
    import pynvml  # nvidia-ml-py is a dependency; this machine has no NVIDIA driver

    with pytest.raises(pynvml.NVMLError):
        pynvml.nvmlInit()
    assert NvidiaCollector.open(pid=1) is None


class _StandInNVML:
    """NVML's calls as pynvml names them, answering for two GPUs (no GPU here: see the module
    docstring); GPU 1 does not support power readings."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self) -> None:
        self.shutdown = False

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None:
        self.shutdown = True

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Any:
        return SimpleNamespace(gpu=90 + h, memory=40)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:
        return SimpleNamespace(total=80 * 2**30, used=20 * 2**30)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        return 60 + h

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        if h == 1:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return 350_000  # milliwatts

    def nvmlDeviceGetEnforcedPowerLimit(self, h: int) -> int:
        return 700_000

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[Any]:
        import os

        return [SimpleNamespace(pid=os.getpid())] if h == 0 else []

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: int) -> list[Any]:
        return []


def test_gpu_metric_names_and_units_follow_wandb() -> None:
    import os

    nvml = _StandInNVML()
    collector = NvidiaCollector.open(os.getpid(), nvml=nvml)
    assert collector is not None
    values = collector.sample()
    assert values["gpu.0.gpu"] == 90.0 and values["gpu.1.gpu"] == 91.0
    assert values["gpu.0.memory"] == 40.0
    assert values["gpu.0.memoryAllocated"] == 25.0
    assert values["gpu.0.memoryAllocatedBytes"] == 20 * 2**30
    assert values["gpu.0.temp"] == 60.0
    assert values["gpu.0.powerWatts"] == 350.0
    assert values["gpu.0.enforcedPowerLimitWatts"] == 700.0
    assert values["gpu.0.powerPercent"] == 50.0
    assert "gpu.1.powerWatts" not in values and values["gpu.1.temp"] == 61.0
    # this process runs on GPU 0 only
    assert values["gpu.process.0.gpu"] == 90.0
    assert not any(k.startswith("gpu.process.1.") for k in values)
    collector.close()
    assert nvml.shutdown


# -- alerts end to end ----------------------------------------------------------------------------


def test_alert_reaches_the_servers_webhook(tmp_path: Path, webhook: Webhook) -> None:
    store_url = f"sqlite:///{tmp_path / 'server.db'}"
    with running_server(store_url, extra_args=["--alert-webhook", webhook.url]) as server:
        run = runyard.init(
            project="vision",
            entity="lab",
            name="resnet",
            settings={"base_url": server.url, "stats_sampling_interval": 0.1},
        )
        run.log({"loss": 12.0})
        runyard.alert(title="loss diverged", text="loss > 10 at step 0 <b>", level="WARN")
        runyard.alert(title="loss diverged", text="again")  # within wait_duration: not sent
        run.alert("nan", "loss is NaN", level=runyard.AlertLevel.ERROR, wait_duration=1)
        assert run._system is not None and run._system.wait_for_samples(2, timeout=20)
        run.finish()
        bodies = webhook.wait_for(2)
        reader = runyard.Api(store=server.url)
        stored = reader.run(f"lab/vision/{run.id}")
        alerts = stored.alerts()
        system = stored.history(stream="system", pandas=False, samples=100)
    assert len(bodies) == 2
    first = bodies[0]
    assert first["text"].startswith(":warning: [WARN] loss diverged (run resnet (lab/vision/")
    attachment = first["attachments"][0]
    assert attachment["title"] == "loss diverged"
    assert attachment["text"] == "loss &gt; 10 at step 0 &lt;b&gt;"  # Slack's escaping
    assert attachment["color"] == "warning"
    assert {"title": "Level", "value": "WARN", "short": True} in attachment["fields"]
    assert bodies[1]["attachments"][0]["title"] == "nan"
    assert bodies[1]["attachments"][0]["color"] == "danger"
    assert [(a.title, a.delivery) for a in alerts] == [
        ("loss diverged", "sent"),
        ("loss diverged", "suppressed"),
        ("nan", "sent"),
    ]
    assert alerts[0].wait_duration == 60.0 and alerts[2].wait_duration == 1.0
    assert len(system) >= 2 and "system.cpu" in system[0]


def test_embedded_store_sends_alerts_from_the_sdk(
    root: Path, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNYARD_ALERT_WEBHOOK", webhook.url)
    run = runyard.init(project="local", settings={"disable_stats": True})
    run.alert("done", "epoch 3 finished", level="INFO")
    run.finish()  # waits (bounded) for the alert's delivery
    assert [b["attachments"][0]["title"] for b in webhook.bodies] == ["done"]
    assert [a.delivery for a in api(root).run(run.id).alerts()] == ["sent"]
