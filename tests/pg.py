"""A PostgreSQL database for tests: the machine's server on 127.0.0.1:5432, started if down."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

BASE = os.environ.get("RUNYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def ensure_server() -> None:
    for attempt in range(30):
        try:
            with psycopg.connect(BASE, connect_timeout=3):
                return
        except psycopg.OperationalError:
            if attempt == 0 and os.path.isdir("/etc/postgresql"):
                versions = os.listdir("/etc/postgresql")
                if versions:
                    subprocess.run(
                        [
                            "pg_ctlcluster",
                            "--skip-systemctl-redirect",
                            versions[0],
                            "main",
                            "start",
                        ],
                        check=False,
                        capture_output=True,
                    )
            time.sleep(1)
    raise RuntimeError(f"PostgreSQL at {BASE} is not reachable and could not be started")


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A SQLAlchemy URL whose tables live in a new schema, dropped afterwards."""
    ensure_server()
    schema = f"ry_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(BASE, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield BASE.replace("postgresql://", "postgresql+psycopg://") + (
            f"?options=-csearch_path%3D{schema}"
        )
    finally:
        with psycopg.connect(BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
