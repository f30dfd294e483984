"""Starting a run with a chosen id without waiting for the store, and reconciling it later.

``init(id=...)`` must know whether the run exists (to resume it at the right step, or to refuse
to overwrite it). Asking the store is one request, but a server that is down, restarting or
stopped must not hold the training back, so :func:`start_with_id` asks it for at most
``Settings.init_timeout`` seconds (``RUNYARD_INIT_TIMEOUT``, 0.5 s):

1. **The store answers in time** (the usual case): decided as always: resume at the stored
   run's next step, refuse an existing id without ``resume``, refuse ``resume='must'`` for a run
   that does not exist.
2. **No answer, but this folder holds a journal of the run** (an earlier session that has not
   reached the store yet, e.g. a SLURM job requeued while the server was down): the journal
   says the run exists and where it stopped; the run resumes from there, *provisionally*.
3. **No answer and no journal**: the run starts provisionally at step 0 (``resume='must'``
   instead waits up to ``Settings.resume_timeout`` and then fails with one clear message).

A provisional run's journal header says so (``provisional: true`` with the step and runtime it
assumed). When the store first answers, the shipper asks for the stored run (after applying any
earlier session's journal of it) and the run *reconciles*: a :class:`Reconciliation` computes
how far the steps logged meanwhile move so that they follow the stored ones (exactly what W&B
would have recorded had it known the stored step from the start: steps the training chose
itself move, steps given explicitly with ``log(step=...)`` stay and those below the stored run's
next step are dropped, as W&B drops them); the run's step counter, runtime, summary and config
move with it, and a ``resume`` record in the journal keeps the decision, so that crash recovery
and ``runyard sync`` rewrite the same records the same way. A journal whose process died before
the store ever answered is reconciled by whoever recovers it. Every decision is stored in the
run's metadata under ``resume`` (who decided, when, the first step, the offset applied).
"""

from __future__ import annotations

import copy
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from runyard.sdk.journal import JOURNAL_SUFFIX, Record, read_journal, try_lock
from runyard.store.base import LIVE_RUN_STATES, RunConflictError, RunRecord, Store
from runyard.store.locate import journal_dir

#: Journal record a provisional session writes when ``log(step=...)`` first gives a step: rows
#: after it carry steps the user chose, which reconciling never moves.
EXPLICIT_STEPS = "explicit_steps"


class ResumeTimeoutError(TimeoutError):
    """``init(resume='must')`` could not get the store's answer within ``resume_timeout``."""


@dataclass
class ResumeStart:
    """How a run with a chosen id starts (see the module docstring)."""

    resumed: bool = False
    start_step: int = 0
    runtime_offset: float = 0.0
    initial_summary: dict[str, Any] | None = None
    #: the stored (or journaled) metric definitions of a resumed run, carried into this session
    stored_metric_defs: list[dict[str, Any]] | None = None
    #: the stored (or journaled) config the run's config is merged over, if it resumes
    stored_config: dict[str, Any] | None = None
    #: True when the store did not answer at init: the run reconciles once it does
    provisional: bool = False
    #: what was decided, by whom (stored in the run's ``meta.resume``)
    decision: dict[str, Any] = field(default_factory=dict)
    #: the resumed run's stored name (it keeps it unless init() gives another)
    stored_name: str | None = None


def waits_for_server(url: str) -> bool:
    """Whether ``init()`` bounds its wait for this store: every store but an SQLite file (on
    this machine, always there) is a server that can be down or stopped."""
    return not url.lower().startswith("sqlite")


def _is_auth_error(exc: BaseException) -> bool:
    return type(exc).__name__ == "StoreAuthError"


# -- asking the store at init ------------------------------------------------------------------


class _StoreQuestion:
    """Asks the store about a run from a daemon thread, so that ``init()`` can stop waiting.

    The thread recovers journals of dead processes first (an earlier session's records decide
    the step), then looks the run up. Until ``retry_until`` (``resume='must'``) an unreachable
    store is asked again; a thread still waiting when ``init()`` moved on ends by itself.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None,
        root: Path,
        path: tuple[str, str, str],
        retry_until: float | None,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.root = root
        self.path = path
        self.retry_until = retry_until
        self.existing: RunRecord | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._ask, name="runyard-init-ask", daemon=True)
        self.thread.start()

    def _ask(self) -> None:
        from runyard.sdk.recovery import recover_journals
        from runyard.store import open_store

        while True:
            try:
                store = open_store(self.url, self.api_key)
                recover_journals(self.root, store, quiet=True)
                self.existing = store.find_run(*self.path)
                self.error = None
                break
            except Exception as exc:
                self.error = exc
                if (
                    _is_auth_error(exc)
                    or self.retry_until is None
                    or time.monotonic() + 0.5 > self.retry_until
                ):
                    break
                time.sleep(0.5)
        self.done.set()

    def wait(self, timeout: float) -> bool:
        return self.done.wait(max(0.0, timeout))


def existing_run_start(
    existing: RunRecord | None, resume: str | None, path: str, decided_by: str
) -> ResumeStart:
    """The start the store's answer implies; ``ValueError`` where ``resume`` forbids it."""
    from runyard.sdk.metadata import hostname
    from runyard.sdk.state import _pid_alive

    if existing is None:
        if resume == "must":
            raise ValueError(
                f"runyard.init: resume='must' but run {path} does not exist; check the id, "
                f"or use resume='allow' to create it"
            )
        return ResumeStart(decision=_decision("new", decided_by, 0))
    if resume in (None, "never"):
        raise ValueError(
            f"runyard.init: run {path} already exists; pass resume='allow' to continue it, or "
            f"choose another id"
        )
    live = existing.state in LIVE_RUN_STATES
    if live and existing.host == hostname() and _pid_alive(existing.pid):
        raise ValueError(
            f"runyard.init: run {path} is still running in process {existing.pid}; finish it first"
        )
    return ResumeStart(
        resumed=True,
        start_step=existing.last_step + 1,
        runtime_offset=existing.runtime,
        initial_summary=dict(existing.summary),
        stored_metric_defs=list(existing.metric_defs),
        stored_config=dict(existing.config),
        decision=_decision("resumed", decided_by, existing.last_step + 1),
        stored_name=existing.name,
    )


def _decision(decision: str, decided_by: str, first_step: int, **extra: Any) -> dict[str, Any]:
    return {
        "decision": decision,
        "decided_by": decided_by,
        "decided_at": time.time(),
        "first_step": first_step,
        **extra,
    }


def start_with_id(
    *,
    url: str,
    api_key: str | None,
    root: Path,
    entity: str,
    project: str,
    run_id: str,
    resume: str | None,
    init_timeout: float,
    resume_timeout: float,
) -> ResumeStart:
    """Decide how a run with a chosen id starts, waiting at most ``init_timeout`` for the store
    (``resume_timeout`` for ``resume='must'`` when nothing local answers); see the module
    docstring."""
    path = f"{entity}/{project}/{run_id}"
    started = time.monotonic()
    if not waits_for_server(url):
        from runyard.sdk.recovery import recover_journals
        from runyard.store import open_store

        try:
            store = open_store(url, api_key)
            # A killed earlier session of this run may have left records that never reached
            # the store: apply them first, or this session would restart at the wrong step.
            recover_journals(root, store, quiet=True)
            found = store.find_run(entity, project, run_id)
            return existing_run_start(found, resume, path, "store at init")
        except Exception as exc:
            if not _cannot_write_now(exc):
                raise
            # A local store that cannot be written now (its disk is full, it is locked):
            # decided like a server that does not answer, below.
    _warm_up(url, api_key)
    started = time.monotonic()  # the wait is for the store, not for this machine's imports
    retry_until = started + resume_timeout if resume == "must" else None
    question = _StoreQuestion(url, api_key, root, (entity, project, run_id), retry_until)
    if question.wait(init_timeout) and question.error is None:
        return existing_run_start(question.existing, resume, path, "store at init")
    if question.error is not None and _is_auth_error(question.error):
        raise question.error
    local = local_session(root, entity, project, run_id)
    if local is not None:
        if local.live_pid is not None:
            raise ValueError(
                f"runyard.init: run {path} is still running in process {local.live_pid} (it "
                f"holds {local.path}); finish it first"
            )
        if resume in (None, "never"):
            raise ValueError(
                f"runyard.init: run {path} already exists (an earlier session's journal is in "
                f"{local.path}); pass resume='allow' to continue it, or choose another id"
            )
        if local.next_step is not None:
            _say(
                f"runyard: the store at {url} did not answer within {init_timeout:g}s "
                f"({_reason(question)}); run {path} resumes at step {local.next_step} from its "
                f"journal {local.path.name}, checked with the store when it answers",
            )
            return ResumeStart(
                resumed=True,
                start_step=local.next_step,
                runtime_offset=local.runtime,
                initial_summary=local.summary,
                stored_metric_defs=local.metric_defs,
                stored_config=local.config,
                stored_name=local.name,
                provisional=True,
                decision=_decision("resumed", "local journal", local.next_step),
            )
    elif resume == "must":
        assert retry_until is not None
        if question.wait(retry_until - time.monotonic()) and question.error is None:
            return existing_run_start(question.existing, resume, path, "store at init")
        if question.error is not None and _is_auth_error(question.error):
            raise question.error
        raise ResumeTimeoutError(
            f"runyard.init: resume='must' needs the store at {url} to confirm that run {path} "
            f"exists, and it did not answer within {resume_timeout:g}s ({_reason(question)}). "
            f"Start the server or check the store's URL (RUNYARD_BASE_URL / RUNYARD_STORE), "
            f"wait longer with RUNYARD_RESUME_TIMEOUT or Settings(resume_timeout=...), or use "
            f"resume='allow' to start now and continue the stored run once the server answers"
        )
    _say(
        f"runyard: the store at {url} did not answer within {init_timeout:g}s "
        f"({_reason(question)}); run {path} starts now and "
        + (
            "continues the stored run (if there is one) once the store answers"
            if resume is not None and resume != "never"
            else "is checked against the stored runs once the store answers"
        ),
    )
    return ResumeStart(
        resumed=local is not None, provisional=True, decision=_decision("pending", "", 0)
    )


def _warm_up(url: str, api_key: str | None) -> None:
    """Import what opening the store needs, without contacting it: on a busy machine the
    imports alone (httpx, SQLAlchemy and a database driver) take longer than the wait."""
    from runyard.credentials import is_http_url
    from runyard.store import open_store

    if is_http_url(url):
        open_store(url, api_key)  # an HTTPStore sends nothing until asked
        return
    try:
        import sqlalchemy as sa

        from runyard.store.sql import normalize_url

        sa.engine.make_url(normalize_url(url)).get_dialect()  # imports the driver
    except Exception:
        pass  # a bad URL fails the same way in the question, with the store's message


def _cannot_write_now(exc: BaseException) -> bool:
    """A store error that passes (a full disk, a lock), as opposed to a wrong URL or schema."""
    from runyard.store.base import StoreUnavailableError

    names = {cls.__name__ for cls in type(exc).__mro__}
    return isinstance(exc, OSError | StoreUnavailableError) or "OperationalError" in names


def _reason(question: _StoreQuestion) -> str:
    if question.error is None:
        return "no answer yet"
    text = str(question.error).strip() or type(question.error).__name__
    return text if len(text) < 300 else text[:300] + "..."


def _say(message: str) -> None:
    # Said even when silent: this changes what the run is until the store answers.
    print(message, file=sys.__stderr__ or sys.stderr)


# -- what this folder's journals know ----------------------------------------------------------


@dataclass
class LocalSession:
    """What the newest local journal of a run says (see :func:`local_session`)."""

    path: Path
    #: the process writing it, if one holds its lock
    live_pid: int | None = None
    #: the next step after it; None when its own steps still wait for the store (provisional)
    next_step: int | None = None
    runtime: float = 0.0
    summary: dict[str, Any] | None = None
    metric_defs: list[dict[str, Any]] | None = None
    config: dict[str, Any] | None = None
    name: str | None = None


def journal_header(path: Path) -> dict[str, Any] | None:
    """The ``run`` record of a journal (its first line), or None if unreadable or gone."""
    try:
        with open(path, "rb") as fh:
            line = fh.readline()
    except OSError:
        return None
    if not line.endswith(b"\n"):
        return None
    try:
        _seq, kind, payload = orjson.loads(line)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    return payload if kind == "run" and isinstance(payload, dict) else None


def run_journals(root: Path, entity: str, project: str, run_id: str) -> list[Path]:
    """The journals in ``root`` of one run, oldest session first."""
    found: list[tuple[float, Path]] = []
    for path in journal_dir(root).glob(f"{run_id}-*{JOURNAL_SUFFIX}"):
        header = journal_header(path)
        if header is None:
            continue
        if (header.get("entity"), header.get("project"), header.get("run_id")) != (
            entity,
            project,
            run_id,
        ):
            continue
        found.append((float(header.get("start_time") or 0.0), path))
    return [p for _, p in sorted(found)]


def local_session(root: Path, entity: str, project: str, run_id: str) -> LocalSession | None:
    """The newest journal of the run in ``root`` and what it implies, or None if there is none."""
    from runyard.sdk.recovery import replay
    from runyard.sdk.state import _pid_alive

    paths = run_journals(root, entity, project, run_id)
    if not paths:
        return None
    for path in paths:
        fd = try_lock(path)
        if fd is None:
            header = journal_header(path) or {}
            pid = header.get("pid")
            if path.exists() and isinstance(pid, int) and _pid_alive(pid):
                return LocalSession(path, live_pid=pid)
            continue
        os.close(fd)
    path = paths[-1]
    try:
        records = list(read_journal(path))
    except OSError:
        return LocalSession(path)
    if not records or records[0][1] != "run":
        return LocalSession(path)
    header = records[0][2]
    resumed_at = next((r for r in records if r[1] == "resume"), None)
    if header.get("provisional") and resumed_at is None:
        return LocalSession(path)  # its steps are relative to a base nobody knows yet
    if resumed_at is not None:
        records = Reconciliation.from_record(resumed_at).place(records)
    steps = [int(p["_step"]) for _, k, p in records if k == "row"]
    runtimes = [float(p.get("_runtime") or 0.0) for _, k, p in records if k == "row"]
    next_step = max(steps) + 1 if steps else int(header.get("start_step") or 0)
    if resumed_at is not None:
        next_step = max(next_step, int(resumed_at[2].get("floor") or 0))
    config = header.get("config")
    name = header.get("name")
    for _, kind, payload in records:
        if kind == "config":
            config = payload
        elif kind == "attrs" and isinstance(payload, dict) and payload.get("name"):
            name = payload["name"]
    tracker, _finished = replay(records)
    return LocalSession(
        path,
        next_step=next_step,
        runtime=max(runtimes, default=float(header.get("runtime_offset") or 0.0)),
        summary=tracker.snapshot(),
        metric_defs=[d.to_dict() for d in tracker.definitions],
        config=dict(config or {}),
        name=name if isinstance(name, str) else None,
    )


# -- reconciling ---------------------------------------------------------------------------------


@dataclass
class Reconciliation:
    """How the records a provisional session logged before the store answered are placed.

    Rows before ``resume_seq`` whose step the run counted itself (before ``absolute_from_seq``)
    move by ``step_offset``; rows logged with an explicit step stay, and those below ``floor``
    are dropped (W&B drops a step below the run's current one). Runtimes move by
    ``runtime_offset``; config records are merged over ``stored_config``.
    """

    decision: dict[str, Any]
    step_offset: int = 0
    runtime_offset: float = 0.0
    floor: int = 0
    absolute_from_seq: int | None = None
    resume_seq: int = 1 << 62
    stored_config: dict[str, Any] | None = None
    initial_summary: dict[str, Any] | None = None
    stored_metric_defs: list[dict[str, Any]] | None = None
    resumed: bool = False
    #: rows dropped by the last :meth:`rewrite`
    dropped: int = 0
    #: the decision goes into the header record's place (recovery of a never-answered journal)
    decision_in_header: bool = False

    def record_payload(self) -> dict[str, Any]:
        """The ``resume`` journal record that keeps this decision."""
        return {
            "decision": self.decision,
            "step_offset": self.step_offset,
            "runtime_offset": self.runtime_offset,
            "floor": self.floor,
            "absolute_from_seq": self.absolute_from_seq,
            "stored_config": self.stored_config,
            "initial_summary": self.initial_summary,
            "stored_metric_defs": self.stored_metric_defs,
            "resumed": self.resumed,
        }

    @classmethod
    def from_record(cls, record: Record) -> Reconciliation:
        payload = record[2] if isinstance(record[2], dict) else {}
        return cls(
            decision=dict(payload.get("decision") or {}),
            step_offset=int(payload.get("step_offset") or 0),
            runtime_offset=float(payload.get("runtime_offset") or 0.0),
            floor=int(payload.get("floor") or 0),
            absolute_from_seq=payload.get("absolute_from_seq"),
            resume_seq=int(record[0]),
            stored_config=payload.get("stored_config"),
            initial_summary=payload.get("initial_summary"),
            stored_metric_defs=payload.get("stored_metric_defs"),
            resumed=bool(payload.get("resumed")),
        )

    def rewrite(self, records: Sequence[Record]) -> list[Record]:
        """``records`` placed as decided, in the form the store takes (the shipper's view)."""
        return self.store_form(self.place(records))

    def place(self, records: Sequence[Record]) -> list[Record]:
        """``records`` with the rows, runtimes and configs journaled before the decision moved
        as decided (rows below ``floor`` with explicit steps dropped; counted in ``dropped``)."""
        out: list[Record] = []
        offset, runtime = self.step_offset, self.runtime_offset
        absolute = self.absolute_from_seq
        self.dropped = 0
        for record in records:
            seq, kind, payload = record
            if seq < self.resume_seq:
                if kind == "row":
                    if absolute is None or seq < absolute:
                        if offset or runtime:
                            payload = dict(payload)
                            payload["_step"] = int(payload["_step"]) + offset
                            if "_runtime" in payload:
                                payload["_runtime"] = float(payload["_runtime"]) + runtime
                            record = (seq, kind, payload)
                    elif int(payload["_step"]) < self.floor:
                        self.dropped += 1
                        continue
                    elif runtime and "_runtime" in payload:
                        payload = dict(payload, _runtime=float(payload["_runtime"]) + runtime)
                        record = (seq, kind, payload)
                elif kind == "config" and self.stored_config:
                    record = (seq, kind, merged_over(self.stored_config, payload))
                elif kind == "finish" and runtime and isinstance(payload, dict):
                    payload = dict(payload, runtime=float(payload.get("runtime") or 0.0) + runtime)
                    record = (seq, kind, payload)
            out.append(record)
        return out

    def store_form(self, records: Sequence[Record]) -> list[Record]:
        """The journal-only records as the store takes them: the ``resume`` record (and, for a
        decision taken in recovery, the header record) becomes a ``meta`` record with the
        decision, kept in the run's metadata; ``explicit_steps`` marks an empty ``meta``."""
        out: list[Record] = []
        for record in records:
            seq, kind, _payload = record
            decided_here = kind == "resume" and seq == self.resume_seq
            if decided_here or (kind == "run" and self.decision_in_header):
                record = (seq, "meta", {"resume": self.decision})
            elif kind == EXPLICIT_STEPS:
                record = (seq, "meta", {})
            out.append(record)
        return out


def merged_over(stored: dict[str, Any], session: Any) -> dict[str, Any]:
    """``session`` (a config) merged over a copy of ``stored``, nested dicts key by key."""
    from runyard.sdk.config import _merge

    return _merge(copy.deepcopy(stored), session if isinstance(session, dict) else {})


def reconcile(
    header: dict[str, Any],
    existing: RunRecord | None,
    *,
    relative_end: int,
    absolute_from_seq: int | None,
    decided_by: str,
) -> Reconciliation:
    """The placement of a provisional session's records given the stored run ``existing``
    (after every earlier session of it was applied). ``relative_end`` is the run's own step
    counter where the session switched to explicit steps (or now, if it never did).
    Raises :class:`RunConflictError` when the run exists and the session may not resume it."""
    path = f"{header['entity']}/{header['project']}/{header['run_id']}"
    assumed = int(header.get("start_step") or 0)
    assumed_runtime = float(header.get("runtime_offset") or 0.0)
    if existing is None:
        base, offset, runtime, resumed = 0, 0, 0.0, False
        verdict = "new"
    elif not header.get("resume"):
        raise RunConflictError(
            f"run {path} already exists in the store; this session was started with that id "
            f"and without resume= while the store could not be asked, so it is not added to "
            f"the stored run"
        )
    else:
        base = existing.last_step + 1
        offset = max(0, base - assumed)
        runtime = max(0.0, existing.runtime - assumed_runtime)
        resumed = True
        verdict = "resumed"
    floor = max(base, relative_end + offset)
    decision = _decision(
        verdict,
        decided_by,
        base if absolute_from_seq is None else floor,
        journal_id=header.get("journal_id"),
        assumed_step=assumed,
        step_offset=offset,
        runtime_offset=runtime,
        floor=floor,
        absolute_from_seq=absolute_from_seq,
    )
    return Reconciliation(
        decision=decision,
        step_offset=offset,
        runtime_offset=runtime,
        floor=floor,
        absolute_from_seq=absolute_from_seq,
        stored_config=dict(existing.config) if existing is not None else None,
        initial_summary=dict(existing.summary) if existing is not None else None,
        stored_metric_defs=list(existing.metric_defs) if existing is not None else None,
        resumed=resumed,
    )


def stored_run_after_earlier_sessions(
    store: Store, root: Path | None, header: dict[str, Any]
) -> RunRecord | None:
    """The stored run of ``header``, after applying every dead earlier session's journal of it
    in ``root`` (in start order); any failure propagates, so the caller asks again later."""
    from runyard.sdk.recovery import recover_journal

    entity, project, run_id = header["entity"], header["project"], header["run_id"]
    if root is not None:
        for path in run_journals(root, entity, project, run_id):
            earlier = journal_header(path)
            if earlier is None or earlier.get("journal_id") == header.get("journal_id"):
                continue
            if float(earlier.get("start_time") or 0.0) > float(header.get("start_time") or 0.0):
                continue
            if earlier.get("mode") == "offline":
                continue
            recover_journal(path, store)
    return store.find_run(entity, project, run_id)


def reconcile_recovered(
    records: list[Record], store: Store, root: Path | None
) -> tuple[list[Record], Reconciliation | None]:
    """The records of a provisional journal being recovered, placed (see
    :meth:`Reconciliation.place`), and the reconciliation used: the one
    its ``resume`` record kept, or one decided now against the store."""
    header = records[0][2]
    found = next((r for r in records if r[1] == "resume"), None)
    if found is not None:
        kept_recon = Reconciliation.from_record(found)
        return kept_recon.place(records), kept_recon
    recon: Reconciliation | None = None
    existing = stored_run_after_earlier_sessions(store, root, header)
    if existing is not None and store.journal_progress(str(header["journal_id"])) > 0:
        # Part of it was applied by an earlier recovery, which stored its decision.
        kept = existing.meta.get("resume") if isinstance(existing.meta, dict) else None
        if isinstance(kept, dict) and kept.get("journal_id") == header.get("journal_id"):
            recon = Reconciliation(
                decision=kept,
                step_offset=int(kept.get("step_offset") or 0),
                runtime_offset=float(kept.get("runtime_offset") or 0.0),
                floor=int(kept.get("floor") or 0),
                absolute_from_seq=kept.get("absolute_from_seq"),
                resumed=kept.get("decision") == "resumed",
            )
    if recon is None:
        rows = [(s, p) for s, k, p in records if k == "row"]
        absolute = next((s for s, k, _ in records if k == EXPLICIT_STEPS), None)
        relative = [int(p["_step"]) for s, p in rows if absolute is None or s < absolute]
        relative_end = max(relative) + 1 if relative else int(header.get("start_step") or 0)
        recon = reconcile(
            header,
            existing,
            relative_end=relative_end,
            absolute_from_seq=absolute,
            decided_by="recovery",
        )
    recon.decision_in_header = True
    return recon.place(records), recon
