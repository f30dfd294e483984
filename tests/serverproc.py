"""A real ``runyard server`` subprocess for tests, and an admin key made directly in a store.

    with running_server(store_url) as server:
        httpx.get(f"{server.url}/api/v1/health")

The server runs as ``python -m runyard server`` on a free port of 127.0.0.1; it is always
stopped by its PID when the ``with`` block ends (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import httpx

START_TIMEOUT = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProc:
    """A running ``runyard server`` subprocess."""

    store_url: str
    port: int
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)
    connect_host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.connect_host}:{self.port}"

    @property
    def api(self) -> str:
        """The API's base URL (``.../api/v1``)."""
        return f"{self.url}/api/v1"

    def output(self) -> str:
        """What the server printed so far (stdout and stderr)."""
        if self.log is None:
            return ""
        self.log.flush()
        with open(self.log.name, "rb") as fh:
            return fh.read().decode(errors="replace")

    def start(self, timeout: float = START_TIMEOUT) -> None:
        if self.log is None:
            self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by close()
                prefix="runyard-server-", suffix=".log"
            )
        self.proc = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_healthy(timeout)

    def _wait_healthy(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"runyard server exited with code {self.proc.returncode} before it was "
                    f"ready:\n{self.output()}"
                )
            try:
                response = httpx.get(f"{self.api}/health", timeout=2.0)
                if response.status_code == 200:
                    return
            except httpx.HTTPError as exc:
                last_error = exc
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(
            f"runyard server not healthy after {timeout:.0f} s ({last_error}):\n{self.output()}"
        )

    def _signal(self, sig: int) -> None:
        """Signal the server's process group (its workers too), by the PID we started."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL (the process group: uvicorn's workers die with it)."""
        if self.proc is None:
            return
        self._signal(signal.SIGKILL)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        self.stop()
        if self.log is not None:
            self.log.close()
            self.log = None


@contextmanager
def running_server(
    store_url: str,
    *,
    workers: int = 1,
    auth: bool = False,
    host: str = "127.0.0.1",
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Iterator[ServerProc]:
    """Start ``runyard server --store store_url`` on a free port and wait for its health check.

    ``host`` is the address it binds (tests reach it on 127.0.0.1 either way; a non-loopback
    address such as ``0.0.0.0`` turns auth on even with ``auth=False``). ``env`` is added to
    this process's environment, minus its ``RUNYARD_*`` variables (``RUNYARD_TEST_*`` stay).
    """
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "runyard",
        "server",
        "--store",
        store_url,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        # Without --auth the server decides: off on a loopback host, on anywhere else.
        *(["--auth"] if auth else []),
        *extra_args,
    ]
    # The server must not pick up this process's RUNYARD_* settings (a client's RUNYARD_STORE
    # or RUNYARD_API_KEY); the tests' own RUNYARD_TEST_* variables are kept.
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RUNYARD_") or k.startswith("RUNYARD_TEST_")
    }
    full_env.update(env or {})
    server = ServerProc(store_url=store_url, port=port, args=args, env=full_env)
    if host == "::1":
        server.connect_host = "[::1]"
    try:
        server.start()
        yield server
    finally:
        server.close()


def runyard_ui(root: os.PathLike[str] | str, *extra: str) -> ServerProc:
    """``runyard ui --dir root`` (the dashboard on an embedded store) on a free port, without the
    test process's ``RUNYARD_*`` settings; not started yet (``start()``, then ``close()``)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    args = [sys.executable, "-m", "runyard", "ui", "--port", str(port), "--no-browser"]
    return ServerProc(store_url="", port=port, args=[*args, *extra, "--dir", str(root)], env=env)


def create_admin_key(store_url: str, user: str = "admin") -> str:
    """An admin API key (``ry_...``) created directly in the store at ``store_url``."""
    return create_key(store_url, user, admin=True)


def create_key(store_url: str, user: str, *, admin: bool = False, description: str = "") -> str:
    """An API key for ``user`` created directly in the store (the user entity is created)."""
    from runyard.store import open_store
    from runyard.store.sql import SQLStore
    from runyard.store.sql_auth import AuthStore

    store = open_store(store_url)
    assert isinstance(store, SQLStore)
    created = AuthStore(store).create_key(user, admin=admin, description=description)
    return created.key


def auth_headers(key: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {key}"}
