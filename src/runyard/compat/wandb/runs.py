"""What a wandb client's run messages become in the store: sessions and journals.

Everything is written through :meth:`Store.apply` with journal batches, the write path of
runyard's own SDK, so a run written by the wandb client is the same rows, documents and states
as a native one, and each write is idempotent the way the SDK's are.

A wandb process that logs a run is a *session* ``S`` (a random id, kept in the run's
``meta["wandb"]["session"]`` so that every server worker finds it). A session writes through
five journals, one per part of the wire protocol, each with the idempotency key that part
gives for free:

========== ====================================== ==========================================
journal    what                                   ``seq``
========== ====================================== ==========================================
``wb-S-c`` the run (created or resumed by the     ``max(clock in µs, applied + 1)``
           header), config, tags, meta, summary,
           alerts, ``preempt`` (mark_preempting)
``wb-S-h`` history rows                           the line's file-stream offset + 1
``wb-S-o`` console lines                          the line's file-stream offset + 1
``wb-S-e`` system metrics (``stats`` samples)     the line's file-stream offset + 1
``wb-S-x`` the exit (``finish`` record)           1
========== ====================================== ==========================================

so a file-stream post that the client re-sends (its answer was lost) adds nothing twice. The
``c`` journal opens the run; the others join it with the ``attach`` header (no state change),
so a run stopped from runyard stays ``stopped`` whatever arrives after.

Sessions and ``upsertBucket``: the id the door answers names the session and the client sends it
back with each later upsert of that session. A resuming client (``resume="allow"``/``"must"``)
sends the id ``RunResumeStatus`` gave it, which names no session: that starts a new session
that reopens the run. An upsert without id creates the run, or joins the ``pending`` run a sweep
agent was handed; for a run that exists and has ended, it is refused with the fix (resume, or
another id), as runyard's own ``init`` refuses it.

History rows at a step the run already has (``wandb sync`` of a run synced before) are left out:
history is immutable, and the first copy is the same data.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runyard.compat.wandb import convert
from runyard.compat.wandb.graphql import GraphQLFieldError
from runyard.compat.wandb.ids import parse_run_storage_id
from runyard.sdk.delivery import Delivery
from runyard.sdk.names import new_run_id, new_run_name
from runyard.store.base import FileData, JournalBatch, RunRecord, Store

log = logging.getLogger("runyard.compat.wandb")

TERMINAL = ("finished", "failed", "crashed", "killed", "stopped", "preempted")
_RUN_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass
class UpsertInput:
    """``upsertBucket``'s input, by W&B's names (``None``: unchanged)."""

    storage_id: str | None = None
    name: str | None = None
    project: str | None = None
    entity: str | None = None
    group: str | None = None
    display_name: str | None = None
    notes: str | None = None
    description: str | None = None
    config: str | None = None
    host: str | None = None
    program: str | None = None
    repo: str | None = None
    commit: str | None = None
    job_type: str | None = None
    sweep: str | None = None
    tags: list[str] | None = None
    summary_metrics: str | None = None

    @classmethod
    def from_args(cls, data: Mapping[str, Any]) -> UpsertInput:
        def text(*names: str) -> str | None:
            for name in names:
                value = data.get(name)
                if value is not None:
                    return str(value)
            return None

        tags = data.get("tags")
        return cls(
            storage_id=text("id"),
            name=text("name"),
            project=text("modelName", "projectName"),
            entity=text("entityName"),
            group=text("groupName"),
            display_name=text("displayName"),
            notes=text("notes"),
            description=text("description"),
            config=text("config"),
            host=text("host"),
            program=text("jobProgram", "program"),
            repo=text("jobRepo", "repo"),
            commit=text("commit"),
            job_type=text("jobType"),
            sweep=text("sweep"),
            tags=[str(t) for t in tags] if isinstance(tags, list) else None,
            summary_metrics=text("summaryMetrics"),
        )


@dataclass
class StreamResult:
    """What a file-stream post did, for its answer."""

    run: RunRecord
    stopped: bool = False
    dropped: convert.Dropped = field(default_factory=convert.Dropped)


def session_of(run: RunRecord) -> str | None:
    block = run.meta.get("wandb")
    if isinstance(block, dict) and isinstance(block.get("session"), str):
        return str(block["session"])
    return None


def _journal(session: str, part: str) -> str:
    return f"wb-{session}-{part}"


def _check_run_id(run_id: str) -> str:
    if not run_id or len(run_id) > 64 or not set(run_id) <= _RUN_ID_CHARS or run_id[0] in "-_.":
        raise GraphQLFieldError(
            f"run id {run_id!r} is not valid for runyard: use 1-64 letters, digits, '_', '-' "
            f"or '.', starting with a letter or digit (wandb.init(id=...))"
        )
    return run_id


def _check_path_part(value: str, what: str) -> str:
    if not value or len(value) > 128 or "/" in value or "\x00" in value or value in (".", ".."):
        raise GraphQLFieldError(
            f"{what} {value!r} is not valid for runyard: use 1-128 characters without '/'"
        )
    return value


class RunWriter:
    """Writes W&B run messages into ``store`` (one per server process; holds no state)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- upsertBucket -------------------------------------------------------------------------

    def upsert(self, entity: str, project: str, inp: UpsertInput) -> tuple[RunRecord, str, bool]:
        """Create, resume or update a run; ``(run, session, inserted)``."""
        _check_path_part(entity, "entity")
        _check_path_part(project, "project")
        ref = parse_run_storage_id(inp.storage_id)
        run_id = inp.name or (ref.run_id if ref else None) or new_run_id()
        _check_run_id(run_id)
        existing = self.store.find_run(entity, project, run_id)
        config, internal = convert.config_from_wandb(inp.config)
        if existing is None:
            return (*self._start(entity, project, run_id, inp, config, internal, None), True)
        session = session_of(existing)
        if existing.state == "pending" and existing.sweep_id is not None:
            if inp.sweep is not None and inp.sweep != existing.sweep_id:
                raise GraphQLFieldError(
                    f"run {existing.path} belongs to sweep {existing.sweep_id}, not {inp.sweep}"
                )
            return (*self._start(entity, project, run_id, inp, config, internal, existing), True)
        if ref is not None and ref.session is not None and ref.session == session:
            return self._update(existing, session, inp, config, internal), session, False
        if (
            ref is None
            and inp.storage_id is None
            and existing.state not in TERMINAL
            and session is not None
        ):
            # A retried first upsert (its answer was lost), or a second process writing to the
            # same running run: both belong to the running session, as in W&B.
            return self._update(existing, session, inp, config, internal), session, False
        if ref is None and inp.storage_id is None:
            raise GraphQLFieldError(
                f"run {existing.path} already exists in runyard ({existing.state}); pass "
                f"resume='allow' (or 'must') to wandb.init to continue it, or choose another "
                f"run id"
            )
        if ref is not None and (ref.entity, ref.project, ref.run_id) != (
            entity,
            project,
            run_id,
        ):
            raise GraphQLFieldError(
                f"the run id the client sent names {ref.entity}/{ref.project}/{ref.run_id}, "
                f"not {existing.path}"
            )
        # Resume: a new session reopens the run.
        return (*self._start(entity, project, run_id, inp, config, internal, existing), False)

    def _wandb_meta(
        self,
        current: Mapping[str, Any] | None,
        session: str,
        internal: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        block: dict[str, Any] = dict(current or {})
        block["session"] = session
        if internal is not None:
            # "e" (the writers' environment) becomes runyard's own meta keys.
            block["config"] = convert.clean_doc({k: v for k, v in internal.items() if k != "e"})
            version = internal.get("cli_version")
            if isinstance(version, str):
                block["client"] = f"wandb {version}"
        return block

    def _meta_from_internal(self, internal: Mapping[str, Any] | None) -> dict[str, Any]:
        """runyard meta keys from the writer environment the client puts in ``_wandb.e``."""
        meta: dict[str, Any] = {}
        env = internal.get("e") if internal else None
        if isinstance(env, dict):
            for entry in env.values():
                meta.update(convert.meta_from_wandb_metadata(entry))
        return meta

    def _start(
        self,
        entity: str,
        project: str,
        run_id: str,
        inp: UpsertInput,
        config: dict[str, Any] | None,
        internal: dict[str, Any] | None,
        existing: RunRecord | None,
    ) -> tuple[RunRecord, str]:
        session = secrets.token_hex(8)
        now = time.time()
        current = existing.meta.get("wandb") if existing is not None else None
        meta = {
            **(existing.meta if existing is not None else {}),
            **self._meta_from_internal(internal),
            "wandb": self._wandb_meta(
                current if isinstance(current, dict) else None, session, internal
            ),
        }
        if inp.host:
            meta.setdefault("host", convert.clean_doc(inp.host))
        if inp.program:
            meta.setdefault("program", convert.clean_doc(inp.program))
        if inp.commit or inp.repo:
            git = dict(meta.get("git") or {})
            git.setdefault("commit", inp.commit)
            git.setdefault("remote", inp.repo)
            meta["git"] = git
        joining = existing is not None and existing.state == "pending"
        header: dict[str, Any] = {
            "entity": entity,
            "project": project,
            "run_id": run_id,
            "name": convert.clean_doc(inp.display_name)
            or (existing.name if existing is not None else None)
            or new_run_name(),
            "group": convert.clean_doc(inp.group),
            "job_type": convert.clean_doc(inp.job_type),
            "tags": [convert.clean_doc(t) for t in inp.tags or []],
            "notes": convert.clean_doc(inp.notes),
            "config": config if config is not None else {},
            "meta": meta,
            "host": convert.clean_doc(inp.host) if inp.host else None,
            "pid": None,  # never this host's PID: liveness is the file stream's heartbeat
            "start_time": now,
            "resume": existing is not None and not joining,
            "join_sweep": joining,
            "sweep_id": existing.sweep_id if existing is not None else inp.sweep,
        }
        records: list[tuple[int, str, Any]] = []
        if existing is not None and not joining:
            # A resumed run keeps what the client does not send again.
            header["name"] = convert.clean_doc(inp.display_name) or existing.name
            header["group"] = header["group"] or existing.group
            header["job_type"] = header["job_type"] or existing.job_type
            header["notes"] = header["notes"] or existing.notes
            seq = self._control_seq(session)
            if config is not None:
                records.append((seq, "config", config))
                seq += 1
            records.append((seq, "meta", meta))
            seq += 1
            if inp.tags is not None:
                records.append((seq, "tags", header["tags"]))
        defs = convert.metric_defs_from_wandb(internal.get("m")) if internal else None
        self._deliver(_journal(session, "c"), header, records, metric_defs=defs, heartbeat_at=now)
        run = self.store.find_run(entity, project, run_id)
        assert run is not None
        return run, session

    def _deliver(
        self,
        journal_id: str,
        header: dict[str, Any],
        records: Sequence[tuple[int, str, Any]],
        *,
        summary: dict[str, Any] | None = None,
        metric_defs: list[dict[str, Any]] | None = None,
        heartbeat_at: float | None = None,
        sizes: Sequence[int] | None = None,
    ) -> None:
        """Apply through runyard's :class:`Delivery`: batches the store takes, and a record the
        store refuses set aside (named in the server's log and the run's ``meta``) while every
        other record is stored. The wandb client gives up its whole upload on a refused
        request, so nothing here refuses a post for one bad value."""
        Delivery(
            self.store,
            journal_id,
            header,
            quarantine_dir=None,
            journal_name=journal_id,
            warn=log.warning,
        ).deliver(
            records,
            sizes=sizes,
            summary=summary,
            metric_defs=metric_defs,
            heartbeat_at=heartbeat_at,
        )

    def _control_seq(self, session: str) -> int:
        applied = self.store.journal_progress(_journal(session, "c"))
        return max(time.time_ns() // 1000, applied + 1)

    def _attach_header(self, run: RunRecord) -> dict[str, Any]:
        return {
            "entity": run.entity,
            "project": run.project,
            "run_id": run.run_id,
            "name": run.name,
            "attach": True,
        }

    def _update(
        self,
        run: RunRecord,
        session: str,
        inp: UpsertInput,
        config: dict[str, Any] | None,
        internal: dict[str, Any] | None,
    ) -> RunRecord:
        seq = self._control_seq(session)
        records: list[tuple[int, str, Any]] = []
        if config is not None:
            records.append((seq, "config", config))
            seq += 1
        if internal is not None:
            current = run.meta.get("wandb")
            meta = {
                **self._meta_from_internal(internal),
                "wandb": self._wandb_meta(
                    current if isinstance(current, dict) else None, session, internal
                ),
            }
            records.append((seq, "meta", meta))
            seq += 1
        if inp.tags is not None:
            records.append((seq, "tags", [convert.clean_doc(t) for t in inp.tags]))
        if not records:
            return run
        defs = convert.metric_defs_from_wandb(internal.get("m")) if internal else None
        self._deliver(
            _journal(session, "c"),
            self._attach_header(run),
            records,
            metric_defs=defs,
            heartbeat_at=time.time(),
        )
        found = self.store.find_run(run.entity, run.project, run.run_id)
        assert found is not None
        return found

    # -- the file stream ----------------------------------------------------------------------

    def stream(self, run: RunRecord, body: Mapping[str, Any]) -> StreamResult:
        """Apply one file-stream post (``{"files": {...}, "preempting": ..., "complete": ...,
        "exitcode": ...}``)."""
        result = StreamResult(run=run)
        session = session_of(run)
        if session is None:
            run, session = self._adopt(run)
        now = time.time()
        header = self._attach_header(run)
        files = body.get("files")
        files = files if isinstance(files, dict) else {}
        applied_any = False

        history = files.get("wandb-history.jsonl")
        rows, sizes = self._history_records(run, history, result.dropped)
        if rows:
            self._deliver(_journal(session, "h"), header, rows, heartbeat_at=now, sizes=sizes)
            applied_any = True

        events = files.get("wandb-events.jsonl")
        samples = self._stats_records(events, result.dropped)
        if samples:
            self._deliver(_journal(session, "e"), header, samples, heartbeat_at=now)
            applied_any = True

        output = files.get("output.log")
        lines = self._console_records(output, now)
        if lines:
            self._deliver(_journal(session, "o"), header, lines, heartbeat_at=now)
            applied_any = True

        summary_part = files.get("wandb-summary.json")
        summary, runtime = self._summary(summary_part, result.dropped)
        if summary is not None:
            seq = self._control_seq(session)
            self._deliver(
                _journal(session, "c"),
                header,
                [(seq, "summary", {})],
                summary=summary,
                heartbeat_at=now,
            )
            applied_any = True

        if body.get("preempting") is True:
            # run.mark_preempting(): the client sends it at once, in a post of its own. The
            # run is `preempting`, and a failed/killed exit after it ends `preempted`.
            self._deliver(
                _journal(session, "c"),
                header,
                [(self._control_seq(session), "preempt", {"time": now})],
                heartbeat_at=now,
            )
            applied_any = True

        if body.get("complete"):
            code = body.get("exitcode")
            exit_code = code if type(code) is int and -(2**31) <= code < 2**31 else None
            state = "finished" if exit_code == 0 else "killed" if exit_code == 255 else "failed"
            failure = None if state == "finished" else f"the process exited with {code}"
            reason = self.stop_reason(run) if run.sweep_id is not None else None
            if reason is not None:  # the sweep stopped it: runyard's verdict for such runs
                state, failure = "stopped", f"stopped early: {reason}"
            # W&B's summary runtime is whole seconds; the rows' _runtime is finer.
            latest = self.store.find_run(run.entity, run.project, run.run_id)
            runtime = max(runtime or 0.0, latest.runtime if latest is not None else 0.0)
            finish = {
                "state": state,
                "exit_code": exit_code,
                "failure": failure,
                "time": now,
                "runtime": float(runtime or 0.0),
            }
            self._deliver(_journal(session, "x"), header, [(1, "finish", finish)])
            applied_any = True

        if not applied_any:  # a heartbeat
            self.store.apply(JournalBatch(_journal(session, "h"), header, [], heartbeat_at=now))
        if result.dropped:
            log.warning("wandb run %s: left out %s", run.path, "; ".join(result.dropped.items))
        latest = self.store.find_run(run.entity, run.project, run.run_id)
        result.run = latest or run
        result.stopped = self.stop_reason(result.run) is not None
        return result

    def stop_reason(self, run: RunRecord) -> str | None:
        """Why the client should stop the run now (answered as the file stream's ``stopped``,
        which the client turns into a KeyboardInterrupt, as W&B's stop button does): the run
        was stopped from runyard (``POST /api/v1/runs/.../state``, ``runyard runs stop``), its
        sweep was canceled, or the sweep's early termination chose it."""
        if run.state == "stopped":
            return run.failure or "stopped from runyard"
        if run.sweep_id is not None and run.state == "running":
            return self.store.controller(run.sweep_id).stop_decisions(run.run_id)
        return None

    def _adopt(self, run: RunRecord) -> tuple[RunRecord, str]:
        """A run with no wandb session (made by runyard's own SDK) that a wandb client streams
        to: give it one, without changing its state."""
        session = secrets.token_hex(8)
        meta = {"wandb": self._wandb_meta(None, session, None)}
        self._deliver(
            _journal(session, "c"),
            self._attach_header(run),
            [(self._control_seq(session), "meta", meta)],
        )
        found = self.store.find_run(run.entity, run.project, run.run_id)
        return found or run, session

    def _history_records(
        self, run: RunRecord, part: Any, dropped: convert.Dropped
    ) -> tuple[list[tuple[int, str, Any]], list[int]]:
        """The post's rows, and their sizes (the line's: close to the record's, and free)."""
        if not isinstance(part, dict):
            return [], []
        offset = part.get("offset")
        content = part.get("content")
        if type(offset) is not int or offset < 0 or not isinstance(content, list):
            dropped.add("wandb-history.jsonl", "no offset/content")
            return [], []
        floor = run.last_step
        records: list[tuple[int, str, Any]] = []
        sizes: list[int] = []
        for i, line in enumerate(content):
            if not isinstance(line, str):
                continue
            row = convert.history_row(line, dropped)
            if row is None:
                continue
            step = row["_step"]
            if step <= floor:
                continue  # the run has this step already (a re-synced run)
            floor = step
            records.append((offset + i + 1, "row", row))
            sizes.append(len(line) + 16)
        return records, sizes

    def _stats_records(self, part: Any, dropped: convert.Dropped) -> list[tuple[int, str, Any]]:
        if not isinstance(part, dict):
            return []
        offset = part.get("offset")
        content = part.get("content")
        if type(offset) is not int or offset < 0 or not isinstance(content, list):
            return []
        records: list[tuple[int, str, Any]] = []
        for i, line in enumerate(content):
            if isinstance(line, str):
                sample = convert.stats_sample(line, dropped)
                if sample is not None:
                    records.append((offset + i + 1, "stats", sample))
        return records

    def _console_records(self, part: Any, now: float) -> list[tuple[int, str, Any]]:
        if not isinstance(part, dict):
            return []
        offset = part.get("offset")
        content = part.get("content")
        if type(offset) is not int or offset < 0 or not isinstance(content, list):
            return []
        records: list[tuple[int, str, Any]] = []
        for i, line in enumerate(content):
            if isinstance(line, str):
                stream, ts, text = convert.console_line(line, now)
                records.append((offset + i + 1, "console", [[stream, ts, text]]))
        return records

    def _summary(
        self, part: Any, dropped: convert.Dropped
    ) -> tuple[dict[str, Any] | None, float | None]:
        if not isinstance(part, dict):
            return None, None
        content = part.get("content")
        if not isinstance(content, list) or not content or not isinstance(content[-1], str):
            return None, None
        try:
            doc = convert.loads(content[-1])
        except ValueError:
            dropped.add("wandb-summary.json", "not JSON")
            return None, None
        summary, runtime = convert.summary_doc(doc, dropped)
        return summary, runtime

    # -- alerts -------------------------------------------------------------------------------

    def alert(
        self, run: RunRecord, *, title: str, text: str, level: str, wait_duration: Any
    ) -> None:
        """``run.alert()``: an ``alert`` record of the run's control journal."""
        from runyard.limits import ALERT_LEVELS, MAX_ALERT_TEXT_LENGTH, MAX_ALERT_TITLE_LENGTH

        title = convert.clean_doc(title)[:MAX_ALERT_TITLE_LENGTH] or "alert"
        text = convert.clean_doc(text)[:MAX_ALERT_TEXT_LENGTH]
        level = level.upper() if level.upper() in ALERT_LEVELS else "INFO"
        # W&B sends a Duration: milliseconds
        wait = wait_duration / 1000 if isinstance(wait_duration, int | float) else 60.0
        session = session_of(run)
        if session is None:
            run, session = self._adopt(run)
        payload = {
            "title": title,
            "text": text,
            "level": level,
            "wait_duration": max(0.0, float(wait)),
            "_timestamp": time.time(),
            "_runtime": run.runtime,
        }
        self._deliver(
            _journal(session, "c"),
            self._attach_header(run),
            [(self._control_seq(session), "alert", payload)],
        )

    # -- files ----------------------------------------------------------------------------------

    def file_uploaded(
        self,
        run: RunRecord,
        name: str,
        data: FileData,
        *,
        max_size: int | None = None,
    ) -> int:
        """Store an uploaded run file (its size); ``wandb-metadata.json`` also fills the run's
        meta (host, os, python, program...)."""
        saved = self.store.put_file(
            run.entity, run.project, run.run_id, name, data, max_size=max_size
        )
        if name != "wandb-metadata.json" or saved.size > 1 << 20:
            return saved.size
        try:
            doc = convert.loads(self.store.read_file(run.entity, run.project, run.run_id, name))
        except ValueError:
            return saved.size
        meta = convert.meta_from_wandb_metadata(doc)
        session = session_of(run)
        if meta and session is not None:
            self._deliver(
                _journal(session, "c"),
                self._attach_header(run),
                [(self._control_seq(session), "meta", meta)],
            )
        return saved.size


def history_tail(store: Store, run: RunRecord) -> list[dict[str, Any]]:
    if run.last_step < 0:
        return []
    return store.history(run.pk, min_step=run.last_step, max_step=run.last_step)


def as_list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []
