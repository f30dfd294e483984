"""System metrics and alerts in the SQL store: applying ``stats``/``alert`` records, reading
them back, and the alert outbox that a dispatcher (:mod:`runyard.alerts`) drains.

Kept apart from store/sql.py (like the sweep half): ``SQLStore._apply_records`` hands the
records of these kinds to :meth:`SystemMethods._apply_system_records` inside its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from runyard._json import dumps, loads_doc
from runyard.store import schema as S
from runyard.store.base import AlertRecord, SystemRows

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

#: Largest ``IN (...)`` list per query when picking evenly spaced samples (SQLite's variable
#: limit is 32766; smaller lists keep each statement quick to plan).
_IN_CHUNK = 1000

#: Delivery states that count as "notified" for the per-title rate limit.
_NOTIFIED = ("pending", "sent", "failed", "expired")


@dataclass
class OutboxAlert:
    """An alert claimed for delivery, with the run it belongs to (for the message)."""

    alert: AlertRecord
    entity: str
    project: str
    run_id: str
    run_name: str


def _to_alert(row: Any) -> AlertRecord:
    return AlertRecord(
        id=int(row["id"]),
        title=row["title"],
        text=row["text"],
        level=row["level"],
        wait_duration=float(row["wait_duration"]),
        timestamp=float(row["timestamp"]),
        runtime=float(row["runtime"]),
        delivery=row["delivery"],
        attempts=int(row["attempts"]),
        sent_at=row["sent_at"],
        error=row["error"],
    )


def even_picks(total: int, samples: int) -> list[int]:
    """``samples`` indexes evenly spaced over ``0..total-1``, the first and the last included."""
    if total <= samples:
        return list(range(total))
    if samples <= 1:
        return [total - 1]
    last = total - 1
    return sorted({round(i * last / (samples - 1)) for i in range(samples)})


class SystemMethods:
    """Mixin: the system-metrics and alerts part of SQLStore."""

    engine: Engine
    is_sqlite: bool

    def _read(self) -> AbstractContextManager[Connection]:  # provided by SQLStore
        raise NotImplementedError

    # -- apply (inside SQLStore.apply's transaction) ----------------------------------------------

    def _lock_run_row(self, conn: Connection, run_pk: int) -> None:
        """Serialize writers of one run's samples/alerts (PostgreSQL; SQLite's BEGIN IMMEDIATE
        already serializes all writers): ``n`` numbering and the rate limit read then write."""
        if not self.is_sqlite:
            conn.execute(
                sa.select(S.runs.c.pk).where(S.runs.c.pk == run_pk).with_for_update()
            ).first()

    def _apply_system_records(
        self,
        conn: Connection,
        run_pk: int,
        stats: Sequence[dict[str, Any]],
        alerts: Sequence[dict[str, Any]],
    ) -> None:
        if not stats and not alerts:
            return
        self._lock_run_row(conn, run_pk)
        if stats:
            last = conn.execute(
                sa.select(sa.func.max(S.system_samples.c.n)).where(
                    S.system_samples.c.run_pk == run_pk
                )
            ).scalar()
            base = 0 if last is None else int(last) + 1
            rows = []
            for i, payload in enumerate(stats):
                data = {k: v for k, v in payload.items() if k[:1] != "_"}
                rows.append(
                    {
                        "run_pk": run_pk,
                        "n": base + i,
                        "timestamp": float(payload["_timestamp"]),
                        "runtime": float(payload.get("_runtime") or 0.0),
                        "data": dumps(data).decode(),
                    }
                )
            conn.execute(S.system_samples.insert(), rows)
        for payload in alerts:
            timestamp = float(payload["_timestamp"])
            wait = float(payload.get("wait_duration") or 0.0)
            previous = conn.execute(
                sa.select(sa.func.max(S.run_alerts.c.timestamp)).where(
                    S.run_alerts.c.run_pk == run_pk,
                    S.run_alerts.c.title == payload["title"],
                    S.run_alerts.c.delivery.in_(_NOTIFIED),
                )
            ).scalar()
            suppressed = previous is not None and timestamp - float(previous) < wait
            conn.execute(
                S.run_alerts.insert().values(
                    run_pk=run_pk,
                    title=payload["title"],
                    text=payload.get("text") or "",
                    level=payload.get("level") or "INFO",
                    wait_duration=wait,
                    timestamp=timestamp,
                    runtime=float(payload.get("_runtime") or 0.0),
                    delivery="suppressed" if suppressed else "pending",
                    attempts=0,
                    next_attempt_at=0.0,
                )
            )

    # -- reads ------------------------------------------------------------------------------------

    def system_metrics(
        self, run_pk: int, samples: int | None = None, keys: Sequence[str] | None = None
    ) -> SystemRows:
        cols = (S.system_samples.c.timestamp, S.system_samples.c.runtime, S.system_samples.c.data)
        where = S.system_samples.c.run_pk == run_pk
        with self._read() as conn:
            last = conn.execute(sa.select(sa.func.max(S.system_samples.c.n)).where(where)).scalar()
            total = 0 if last is None else int(last) + 1
            raw: list[Any] = []
            downsampled = samples is not None and samples > 0 and total > samples
            if not downsampled:
                raw = list(
                    conn.execute(sa.select(*cols).where(where).order_by(S.system_samples.c.n))
                )
            else:
                assert samples is not None
                picks = even_picks(total, samples)
                for start in range(0, len(picks), _IN_CHUNK):
                    chunk = picks[start : start + _IN_CHUNK]
                    raw.extend(
                        conn.execute(
                            sa.select(*cols)
                            .where(where, S.system_samples.c.n.in_(chunk))
                            .order_by(S.system_samples.c.n)
                        )
                    )
        wanted = set(keys) if keys is not None else None
        rows: list[dict[str, Any]] = []
        for timestamp, runtime, data in raw:
            values: dict[str, Any] = loads_doc(data) or {}
            if wanted is not None:
                values = {k: v for k, v in values.items() if k in wanted}
                if not values:
                    continue
            rows.append({"_timestamp": float(timestamp), "_runtime": float(runtime), **values})
        return SystemRows(rows=rows, total=total, downsampled=downsampled)

    def alerts(self, run_pk: int) -> list[AlertRecord]:
        stmt = (
            sa.select(S.run_alerts)
            .where(S.run_alerts.c.run_pk == run_pk)
            .order_by(S.run_alerts.c.id)
        )
        with self._read() as conn:
            return [_to_alert(row) for row in conn.execute(stmt).mappings()]

    # -- the outbox (runyard.alerts.AlertDispatcher) ----------------------------------------------

    def claim_alerts(
        self,
        now: float,
        *,
        limit: int = 20,
        max_age: float = 3600.0,
        claim_timeout: float = 60.0,
    ) -> list[OutboxAlert]:
        """Take up to ``limit`` pending alerts due for delivery, oldest first.

        A claim counts an attempt and pushes ``next_attempt_at`` to ``now + claim_timeout``, in
        one transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so that two dispatchers
        (server workers, replicas, an SDK) never take the same alert, and an alert whose
        dispatcher died mid-send is taken again after ``claim_timeout``. Pending alerts older
        than ``max_age`` seconds become ``expired``: a webhook configured today does not get
        last month's alerts.
        """
        a = S.run_alerts
        with self.engine.begin() as conn:
            conn.execute(
                a.update()
                .where(a.c.delivery == "pending", a.c.timestamp < now - max_age)
                .values(delivery="expired", error="not delivered within max_age")
            )
            pick = (
                sa.select(a.c.id)
                .where(a.c.delivery == "pending", a.c.next_attempt_at <= now)
                .order_by(a.c.id)
                .limit(limit)
            )
            if not self.is_sqlite:
                pick = pick.with_for_update(skip_locked=True)
            ids = [int(i) for i in conn.execute(pick).scalars()]
            if not ids:
                return []
            conn.execute(
                a.update()
                .where(a.c.id.in_(ids))
                .values(attempts=a.c.attempts + 1, next_attempt_at=now + claim_timeout)
            )
            stmt = (
                sa.select(
                    a,
                    S.projects.c.entity,
                    S.projects.c.name.label("project"),
                    S.runs.c.run_id,
                    S.runs.c.name.label("run_name"),
                )
                .join(S.runs, S.runs.c.pk == a.c.run_pk)
                .join(S.projects, S.projects.c.id == S.runs.c.project_id)
                .where(a.c.id.in_(ids))
                .order_by(a.c.id)
            )
            return [
                OutboxAlert(
                    _to_alert(row), row["entity"], row["project"], row["run_id"], row["run_name"]
                )
                for row in conn.execute(stmt).mappings()
            ]

    def finish_alert(
        self,
        alert_id: int,
        now: float,
        *,
        sent: bool,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> None:
        """Record a delivery attempt: ``sent``; or failed, retried at ``retry_at`` (it stays
        ``pending``), or given up (``retry_at`` None: ``failed``)."""
        a = S.run_alerts
        if sent:
            values: dict[str, Any] = {"delivery": "sent", "sent_at": now, "error": None}
        elif retry_at is not None:
            values = {"next_attempt_at": retry_at, "error": error}
        else:
            values = {"delivery": "failed", "error": error}
        with self.engine.begin() as conn:
            conn.execute(a.update().where(a.c.id == alert_id).values(**values))
