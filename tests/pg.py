"""A PostgreSQL database for tests, wherever the tests run.

In order:

1. the server at ``RUNYARD_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``, the
   machine's PostgreSQL in CI);
2. if it does not answer, the machine's Debian cluster, started with ``pg_ctlcluster`` (skipped
   with ``RUNYARD_TEST_PG_NO_SYSTEM=1``);
3. otherwise a throwaway cluster made from the installed server binaries (``initdb``/``pg_ctl``
   under ``/usr/lib/postgresql/*/bin`` or on ``PATH``; ``make test`` installs them when absent):
   a temporary data directory, a free port on 127.0.0.1, trust authentication, no fsync.
   ``RUNYARD_TEST_PG_THROWAWAY=1`` goes straight to this step.

The throwaway cluster is shared by every test process of the machine (pytest, its subprocesses,
parallel sessions): its state lives in ``RUNYARD_TEST_PG_DIR`` (default
``$TMPDIR/runyard-test-pg-<uid>``), guarded by a lock file. Each process that uses it holds a
shared ``flock`` on ``users``; at exit (``atexit``) the last one stops the server by its PID and
removes the directory. Tests never silently skip PostgreSQL: when no server can be had,
:func:`ensure_server` raises.

:data:`BASE` is the URL in use once :func:`ensure_server` has run (it is also exported as
``RUNYARD_TEST_PG`` so that child processes find the same server).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
BASE = os.environ.get("RUNYARD_TEST_PG", DEFAULT)

_ready = False
_users_fd: int | None = None  # our shared lock on the throwaway cluster's "users" file
_users_pid = 0  # the process that took it (a forked child must not release it)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def _reachable(url: str, timeout: int = 3) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=timeout):
            return True
    except psycopg.OperationalError:
        return False


def ensure_server() -> str:
    """Make sure a PostgreSQL server answers; return (and set :data:`BASE` to) its URL."""
    global BASE, _ready
    if _ready:
        return BASE
    if not _env_true("RUNYARD_TEST_PG_THROWAWAY") and (
        _reachable(BASE) or (_start_system_cluster() and _wait_reachable(BASE, 20))
    ):
        _ready = True
        return BASE
    BASE = _throwaway_cluster()
    os.environ["RUNYARD_TEST_PG"] = BASE
    _ready = True
    return BASE


def _wait_reachable(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _reachable(url):
            return True
        time.sleep(0.5)
    return False


def _start_system_cluster() -> bool:
    """Start the machine's Debian cluster; True if it was down and now started."""
    if _env_true("RUNYARD_TEST_PG_NO_SYSTEM") or not shutil.which("pg_ctlcluster"):
        return False
    if not os.path.isdir("/etc/postgresql"):
        return False
    versions = sorted(os.listdir("/etc/postgresql"))
    if not versions:
        return False
    proc = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        check=False,
        capture_output=True,
    )
    # rc 2 is "already running": then it answered but refused us (no such database, password
    # authentication on a fresh install...), and waiting would not help.
    return proc.returncode == 0


# -- the throwaway cluster ---------------------------------------------------------------------


def server_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: PATH first, then Debian's layout."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in p.split("/")[4].split(".")],
    )
    return Path(found[-1]).parent if found else None


def state_dir() -> Path:
    return Path(
        os.environ.get("RUNYARD_TEST_PG_DIR")
        or Path(tempfile.gettempdir()) / f"runyard-test-pg-{os.getuid()}"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> dict[str, Any]:
    """``subprocess`` arguments that drop root: initdb and postgres refuse to run as root."""
    if os.getuid() != 0:
        return {}
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) exists")


def _postmaster_alive(pid: int, datadir: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return "postgres" in cmdline and datadir in cmdline


def _throwaway_cluster() -> str:
    """Start (or join) the shared throwaway cluster; return its URL."""
    global _users_fd, _users_pid
    root = state_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state_file = root / "state.json"
        state = json.loads(state_file.read_text()) if state_file.exists() else None
        url = None
        if state and _postmaster_alive(state["pid"], state["datadir"]):
            if _wait_reachable(state["url"], 10):
                url = state["url"]
            else:
                _stop(state)
        elif state:
            _stop(state)  # a dead server: clean its folder
        if url is None:
            state = _start_throwaway(root)
            state_file.write_text(json.dumps(state))
            url = state["url"]
        if _users_fd is None:
            _users_fd = os.open(root / "users", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(_users_fd, fcntl.LOCK_SH)
            _users_pid = os.getpid()
            atexit.register(_release_throwaway, root)
    return url


def _start_throwaway(root: Path) -> dict[str, Any]:
    bindir = server_bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL tests need a server: none answers at "
            f"{os.environ.get('RUNYARD_TEST_PG', DEFAULT)} and no server binaries (initdb, "
            "pg_ctl) are installed; run `make test` (it installs them) or "
            "`apt-get install postgresql`"
        )
    owner = _run_as()
    last_error = ""
    for _attempt in range(3):
        base = Path(tempfile.mkdtemp(prefix="cluster-", dir=root))
        datadir, sockdir = base / "data", base / "sock"
        sockdir.mkdir()
        if owner:
            for path in (base, sockdir):
                os.chown(path, owner["user"], owner["group"])
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(base),
            "LC_ALL": "C",
            "LANG": "C",
        }
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            env=env,
            cwd=base,
            **owner,
        )
        port = _free_port()
        options = (
            f"-p {port} -k {sockdir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        proc = subprocess.run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-o",
                options,
                "-l",
                str(base / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            cwd=base,
            **owner,
        )
        pid_file = datadir / "postmaster.pid"
        if proc.returncode == 0 and pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute("CREATE DATABASE test")
            return {
                "url": f"postgresql://postgres@127.0.0.1:{port}/test",
                "pid": pid,
                "datadir": str(datadir),
                "base": str(base),
            }
        log = base / "server.log"
        last_error = proc.stderr + (log.read_text() if log.exists() else "")
        shutil.rmtree(base, ignore_errors=True)  # most likely the port was taken meanwhile
    raise RuntimeError(f"could not start a throwaway PostgreSQL cluster:\n{last_error}")


def _stop(state: dict[str, Any]) -> None:
    """Stop a throwaway server by its PID (fast shutdown) and remove its folder."""
    pid = int(state["pid"])
    if _postmaster_alive(pid, state["datadir"]):
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while _postmaster_alive(pid, state["datadir"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _postmaster_alive(pid, state["datadir"]):
            os.kill(pid, signal.SIGQUIT)
            time.sleep(1)
    shutil.rmtree(state["base"], ignore_errors=True)


def _release_throwaway(root: Path) -> None:
    """At exit: the last process using the throwaway cluster stops it."""
    global _users_fd
    if _users_fd is None or os.getpid() != _users_pid:
        return
    with open(root / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            fcntl.flock(_users_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            last = False  # other processes still use it
        else:
            last = True
        os.close(_users_fd)
        _users_fd = None
        state_file = root / "state.json"
        if last and state_file.exists():
            _stop(json.loads(state_file.read_text()))
            state_file.unlink()


# -- per-test databases -------------------------------------------------------------------------


def sqlalchemy_url(schema: str) -> str:
    return BASE.replace("postgresql://", "postgresql+psycopg://") + (
        f"?options=-csearch_path%3D{schema}"
    )


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A SQLAlchemy URL whose tables live in a new schema, dropped afterwards."""
    ensure_server()
    schema = f"ry_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield sqlalchemy_url(schema)
    finally:
        with (
            contextlib.suppress(psycopg.OperationalError),
            psycopg.connect(BASE, autocommit=True) as conn,
        ):
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


# -- a cluster of one's own (fault tests restart it) ---------------------------------------------


class PrivateCluster:
    """A throwaway PostgreSQL cluster that only its test uses, so that it may restart it."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.url = state["url"]

    @property
    def sqlalchemy_url(self) -> str:
        return self.url.replace("postgresql://", "postgresql+psycopg://")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, the server comes back."""
        bindir = server_bindir()
        assert bindir is not None
        base = Path(self.state["base"])
        subprocess.run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                self.state["datadir"],
                "-w",
                "-t",
                "60",
                "-m",
                "fast",
                "-l",
                str(base / "server.log"),
                "restart",
            ],
            check=True,
            capture_output=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base), "LC_ALL": "C"},
            cwd=base,
            **_run_as(),
        )
        pid_file = Path(self.state["datadir"]) / "postmaster.pid"
        self.state["pid"] = int(pid_file.read_text().split()[0])


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """A new cluster in a temporary folder of its own (the unprivileged user the server runs as
    must reach it, which pytest's per-user folders forbid), stopped by its PID at the end."""
    root = Path(tempfile.mkdtemp(prefix="runyard-test-pg-private-"))
    os.chmod(root, 0o755)
    try:
        state = _start_throwaway(root)
        try:
            yield PrivateCluster(state)
        finally:
            _stop(state)
    finally:
        shutil.rmtree(root, ignore_errors=True)
