"""The sweep controller of a sweep on a ``runyard server`` (see :mod:`runyard.store.http`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote

from runyard.store.base import AgentRecord, StoreError, SweepRecord, TrialRecord
from runyard.store.http import HTTPStore, _build
from runyard.sweeps.controller import Decision, SweepControl, TrialResult, check_results


class HTTPSweepControl(SweepControl):
    """The sweep controller of a sweep on a server: each decision is one request, made by the
    server inside its sweep transaction (so agents anywhere never share an assignment)."""

    def __init__(self, store: HTTPStore, sweep_id: str) -> None:
        self.store = store
        self.sweep_id = sweep_id
        self._base = f"/sweeps/{quote(sweep_id, safe='')}"

    def sweep(self) -> SweepRecord:
        sweep = self.store.get_sweep(self.sweep_id)
        if sweep is None:
            raise StoreError(f"no sweep {self.sweep_id!r} on {self.store.url}")
        return sweep

    def next_run(self, agent_id: str, *, reclaim: bool = False) -> Decision:
        # Without reclaim the request may create a run each time: never re-sent after an
        # unknown outcome. With it, a repeat hands out the same pending run again.
        doc = self.store._json(
            "POST",
            f"{self._base}/agents/{quote(agent_id, safe='')}/next",
            params={"reclaim": "true"} if reclaim else None,
            idempotent=reclaim,
        )
        kind = doc.get("kind")
        if kind not in ("run", "wait", "done"):
            raise StoreError(f"unexpected answer from the server to next: {doc!r}")
        return Decision(
            kind,
            str(doc.get("reason") or ""),
            doc.get("run_id"),
            doc.get("run_name"),
            dict(doc.get("params") or {}),
        )

    def set_run_cap(self, run_cap: int) -> SweepRecord:
        doc = self.store._json("POST", f"{self._base}/run_cap", body={"run_cap": run_cap})
        return self.store._sweep(doc)

    def requeue(self, run_ids: Sequence[str] | None = None) -> list[str]:
        # Safe to repeat: a trial already requeued is not queued again.
        body = {"run_ids": None if run_ids is None else list(run_ids)}
        doc = self.store._json("POST", f"{self._base}/requeue", body=body)
        return [str(r) for r in doc.get("requeued") or []]

    def stop_decisions(self, run_id: str | None) -> str | None:
        if run_id is None:
            return None
        doc = self.store._json("GET", f"{self._base}/runs/{quote(run_id, safe='')}/stop")
        reason = doc.get("reason") if isinstance(doc, dict) else None
        return str(reason) if reason else None

    def finish_trial(
        self, run_id: str, exit_code: int | None, stop_reason: str | None
    ) -> TrialRecord | None:
        doc = self.store._json(
            "POST",
            f"{self._base}/runs/{quote(run_id, safe='')}/finish",
            body={"exit_code": exit_code, "stop_reason": stop_reason},
        )
        return None if not doc else self.store._trial(doc, self.sweep_id)

    def fail_trial(self, run_id: str, reason: str) -> None:
        self.store._json(
            "POST", f"{self._base}/runs/{quote(run_id, safe='')}/fail", body={"reason": reason}
        )

    def best(self, limit: int = 10) -> list[tuple[TrialRecord, float | None]]:
        if self.sweep_id not in self.store._sweep_paths:
            self.store.get_sweep(self.sweep_id)
        docs = self.store._json("GET", f"{self._base}/best", params={"limit": limit})
        out: list[tuple[TrialRecord, float | None]] = []
        for doc in docs:
            value = doc.get("value")
            out.append(
                (
                    self.store._trial(doc["trial"], self.sweep_id),
                    None if value is None else float(value),
                )
            )
        return out

    def agents(self) -> list[AgentRecord]:
        docs = self.store._json("GET", f"{self._base}/agents")
        return [_build(AgentRecord, d) for d in docs or []]

    def reap(self, dead: Mapping[str, float | None], failure: str | None = None) -> list[str]:
        if not dead:
            return []
        # Safe to repeat: an agent already dead is left alone the second time.
        doc = self.store._json(
            "POST",
            f"{self._base}/reap",
            body={
                "agents": [{"agent_id": k, "heartbeat_at": v} for k, v in dead.items()],
                "failure": failure,
            },
        )
        return [str(r) for r in doc.get("crashed") or []]

    def record_results(self, results: Sequence[TrialResult]) -> list[str]:
        check_results(results)  # here too: a bad call fails the same way on every store
        if not results:
            return []
        # Safe to repeat: the same result applied twice leaves the run as once.
        doc = self.store._json(
            "POST",
            f"{self._base}/results",
            body={
                "results": [
                    {
                        "run_id": r.run_id,
                        "state": r.state,
                        "summary": r.summary,
                        "config": r.config,
                        "failure": r.failure,
                        "expect_state": r.expect_state,
                    }
                    for r in results
                ]
            },
        )
        return [str(r) for r in doc.get("skipped") or []]

    def abandon(self, agent_id: str, failure: str | None = None) -> list[str]:
        doc = self.store._json(
            "POST",
            f"{self._base}/agents/{quote(agent_id, safe='')}/abandon",
            body={"failure": failure},
        )
        return [str(r) for r in doc.get("crashed") or []]
