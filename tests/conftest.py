from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runyard
from runyard.sdk import state as sdk_state
from runyard.store.sql import SQLStore

REPO = Path(__file__).resolve().parent.parent

# A shell without job control starts background commands (`make test &`, nohup) with SIGINT
# ignored, and every process the tests start inherits that: Ctrl-C (SIGINT, the wandb client's
# stop) would then do nothing to them and the tests of those paths would wait out their
# timeouts. A handled signal is reset to the default in exec'd children, so handling it here
# gives them the terminal's ordinary SIGINT.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with the most slow tests first (order otherwise kept). ``make test`` runs the
    files on two workers (pytest-xdist ``--dist loadfile``), handed out in this order: a long
    file started last would leave one worker running alone at the end. Every worker collects
    the same order, as xdist requires."""
    slow: dict[str, int] = {}
    for item in items:
        path = str(item.path)
        slow[path] = slow.get(path, 0) + (item.get_closest_marker("slow") is not None)
    position = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (-slow[str(item.path)], position[id(item)]))


@pytest.fixture(scope="session", autouse=True)
def no_stray_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A ``.runyard`` folder above the tests' temporary folders (``/tmp/.runyard``, left by a
    script run in ``/tmp``) would capture every run the tests start: say so instead of
    failing in a hundred confusing ways."""
    base = tmp_path_factory.getbasetemp().resolve()
    for folder in base.parents:
        if (folder / ".runyard").is_dir():
            pytest.exit(
                f"{folder / '.runyard'} would take the tests' runs (runyard finds the nearest "
                f".runyard folder up from the working directory): remove it, or run pytest "
                f"with --basetemp elsewhere",
                returncode=4,
            )


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test runs in its own folder with its own store and no RUNYARD_* variables."""
    for var in list(os.environ):
        if var.startswith(("RUNYARD_", "WANDB_")):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUNYARD_SILENT", "true")
    monkeypatch.setenv("RUNYARD_DISABLE_GIT", "true")
    # A developer's `runyard login` must not send the suite's runs to their server.
    monkeypatch.setenv("RUNYARD_CONFIG_DIR", str(tmp_path / ".runyard-config"))
    # Artifact hash and download caches stay inside the test too.
    monkeypatch.setenv("RUNYARD_CACHE_DIR", str(tmp_path / ".runyard-cache"))
    runyard.config = runyard.Config()
    yield tmp_path
    for run in list(sdk_state._active):
        run.finish(quiet=True)
    runyard.config = runyard.Config()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / ".runyard"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    """A fresh SQL store: the same tests run on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        sqlite_store = SQLStore(f"sqlite:///{tmp_path / 'store.db'}")
        yield sqlite_store
        sqlite_store.close()
    else:
        from tests import pg

        with pg.fresh_schema() as url:
            pg_store = SQLStore(url)
            yield pg_store
            pg_store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str | None]:
    """The store of a test that goes through the SDK, the CLI or subprocesses, on both backends:
    ``None`` for the embedded SQLite store (the default), or a PostgreSQL URL (a fresh schema)
    that is also ``RUNYARD_STORE`` in this process. Pass it to children as ``RUNYARD_STORE``
    (``run_python`` does not forward ``RUNYARD_*`` variables)."""
    if request.param == "sqlite":
        yield None
        return
    from runyard import store as store_module
    from runyard.store.sql import normalize_url
    from tests import pg

    with pg.fresh_schema() as url:
        monkeypatch.setenv("RUNYARD_STORE", url)
        # These tests check what init(id=...) decides with the store's answer; on a loaded
        # machine PostgreSQL may take longer than init's default wait (0.5 s), after which the
        # run would start provisionally (tests/test_init_without_server.py covers that).
        monkeypatch.setenv("RUNYARD_INIT_TIMEOUT", "60")
        try:
            yield url
        finally:
            # open_store keeps one store per URL and process: close ours before the schema goes.
            for key in [k for k in store_module._OPEN if k[0] == normalize_url(url)]:
                store_module._OPEN.pop(key).close()


def store_env(url: str | None) -> dict[str, str]:
    """Environment for a child process that must use the test's store (see ``store_url``)."""
    return {"RUNYARD_STORE": url, "RUNYARD_INIT_TIMEOUT": "60"} if url else {}


def run_python(
    code: str,
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    args: list[str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a script in a fresh interpreter (the project's venv)."""
    script = cwd / "script_under_test.py"
    script.write_text(textwrap.dedent(code))
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    full_env.update({"RUNYARD_SILENT": "true", "RUNYARD_DISABLE_GIT": "true"})
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, str(script), *(args or [])],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"script failed ({proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def api(root: Path) -> runyard.Api:
    from runyard.api import Api

    return Api(dir=root)


@pytest.fixture(scope="session")
def s3() -> Iterator[Any]:
    """One S3 protocol server (moto's server mode) for the whole session; tests use their own
    buckets or prefixes."""
    from tests.s3server import s3_server

    with s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One ``runyard server`` (SQLite, no auth) for the tests that only add their own runs (by
    distinct ids and projects) or refuse input; a test that freezes it (SIGSTOP) thaws it
    before it ends."""
    from tests.serverproc import running_server

    folder = tmp_path_factory.mktemp("shared-server")
    with running_server(f"sqlite:///{folder / 'server.db'}") as proc:
        yield proc


def killed_child(target: Any, *args: Any) -> int:
    """Run ``target(*args)`` in a forked child (this interpreter, nothing to import again) that
    then dies by SIGKILL, as a preempted job would; returns the child's exit code."""
    import multiprocessing
    import signal

    def body() -> None:
        target(*args)
        os.kill(os.getpid(), signal.SIGKILL)

    child = multiprocessing.get_context("fork").Process(target=body)
    child.start()
    child.join(120)
    return child.exitcode if child.exitcode is not None else 0
