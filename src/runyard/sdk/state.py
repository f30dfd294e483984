"""Process-wide state: the active runs, ``init()``, and the hooks that end runs properly.

No helper process is started, so nothing can hang at ``init()`` under fork, spawn,
forkserver, joblib/loky or Hydra launchers. Hooks installed once per process:

* ``atexit`` (and multiprocessing's exit finalizers, since pool children skip ``atexit``):
  finish active runs as ``finished``;
* ``sys.excepthook``: an uncaught exception finishes them as ``failed`` with the traceback
  (``KeyboardInterrupt``: ``killed``);
* ``SIGTERM``, if nobody else handles it: raise ``SystemExit(143)`` in the main thread, so the
  program unwinds (``finally`` blocks run) and the exit hook finishes runs as ``killed``. The
  handler itself writes nothing: it may interrupt a ``log()`` holding the journal's lock;
* ``sys.exit`` is wrapped (as W&B does) to remember the exit code and the exception being
  handled at that moment: Hydra catches a task's exception, prints it and calls
  ``sys.exit(1)``, and without this the run would end ``finished``;
* ``os.register_at_fork``: a forked child forgets the parent's runs (they stay the parent's).
"""

from __future__ import annotations

import atexit
import errno
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, NoReturn

from runyard._json import loads_doc
from runyard.errors import UsageError
from runyard.sdk.config import Config, ConfigError
from runyard.sdk.metadata import hostname, process_metadata, username
from runyard.sdk.names import check_name, check_run_id, new_run_id, new_run_name
from runyard.sdk.resume import ResumeStart, start_with_id
from runyard.sdk.run import Run
from runyard.sdk.settings import Settings

_lock = threading.RLock()
_active: list[Run] = []
#: ``_active[-1]``, kept in a plain global so that ``runyard.log`` needs no lock.
_current: Run | None = None
_hooks_installed_pid: int | None = None
_orphans: list[Run] = []

REINIT_CHOICES = ("finish_previous", "return_previous", "create_new", "default")
RESUME_CHOICES = ("allow", "must", "never", "auto")


def _package() -> Any:
    return sys.modules["runyard"]


def current_run() -> Run | None:
    with _lock:
        return _active[-1] if _active else None


def forget(run: Run) -> None:
    """Called by ``Run.finish``: drop the run and reset the module-level shortcuts."""
    global _current
    with _lock:
        if run in _active:
            _active.remove(run)
        nxt = _active[-1] if _active else None
        _current = nxt
    pkg = _package()
    # Reset only what still points at this run: a config the user already assigned for the
    # next run (``runyard.config = {...}`` before the next init) must survive.
    if pkg.__dict__.get("run") is run:
        pkg.run = nxt
    if pkg.__dict__.get("config") is run.config:
        pkg.config = nxt.config if nxt is not None else Config()
    if pkg.__dict__.get("summary") is run.summary:
        pkg.summary = nxt.summary if nxt is not None else None


def init(
    project: str | None = None,
    entity: str | None = None,
    name: str | None = None,
    id: str | None = None,
    config: Any = None,
    group: str | None = None,
    job_type: str | None = None,
    tags: Sequence[str] | None = None,
    notes: str | None = None,
    dir: str | os.PathLike[str] | None = None,
    mode: str | None = None,
    resume: bool | str | None = None,
    reinit: bool | str | None = None,
    settings: Settings | dict[str, Any] | None = None,
    config_exclude_keys: Sequence[str] | None = None,
    config_include_keys: Sequence[str] | None = None,
    allow_val_change: bool | None = None,
    save_code: bool | None = None,
    sync_tensorboard: bool | None = None,
    monitor_gym: bool | None = None,
    anonymous: str | None = None,
) -> Run:
    """Start a run (see docs/sdk.md). Returns the ``Run``, also usable as a context manager."""
    base = settings if isinstance(settings, Settings) else Settings().merged(settings)
    if _job_context is not None:
        base = _job_context.settings.merged(base)
    explicit = Settings(
        mode=mode,
        project=project,
        entity=entity,
        # W&B's dir: where the run's files go; the store stays where it is found
        files_dir=os.fspath(dir) if dir is not None else None,
        run_id=id,
        run_name=name,
        run_group=group,
        job_type=job_type,
        run_notes=notes,
        resume=_resume_text(resume),
    )
    resolved = base.merged(explicit).resolved()
    resolved.resume = _resume_text(resolved.resume)  # RUNYARD_RESUME/WANDB_RESUME too
    reinit_choice = _reinit_choice(reinit)
    with _lock:
        _install_hooks()
        previous = current_run()
        if previous is not None:
            if reinit_choice == "return_previous":
                return previous
            if reinit_choice == "finish_previous":
                previous.finish()
        return _start(
            resolved,
            config=config,
            tags=tags,
            config_exclude_keys=config_exclude_keys,
            config_include_keys=config_include_keys,
        )


def _resume_text(resume: bool | str | None) -> str | None:
    if resume is None:
        return None
    if resume is True:
        return "allow"
    if resume is False:
        return "never"
    value = str(resume).lower()
    if value not in RESUME_CHOICES:
        raise ValueError(
            f"runyard.init: resume={resume!r} is not valid; use 'allow', 'must', 'never' "
            f"(or True/False)"
        )
    return "allow" if value == "auto" else value


def _reinit_choice(reinit: bool | str | None) -> str:
    if reinit is None or reinit is True or reinit == "default":
        return "finish_previous"
    if reinit is False:
        return "return_previous"
    if reinit not in REINIT_CHOICES:
        raise ValueError(
            f"runyard.init: reinit={reinit!r} is not valid; use one of "
            f"{', '.join(REINIT_CHOICES)} (or True/False)"
        )
    return str(reinit)


def _start(
    settings: Settings,
    *,
    config: Any,
    tags: Sequence[str] | None,
    config_exclude_keys: Sequence[str] | None,
    config_include_keys: Sequence[str] | None,
) -> Run:
    from runyard.store import resolve_store_url
    from runyard.store.locate import resolve_root

    sweep = _sweep_assignment(settings)
    if sweep is not None:
        # An agent's assignment wins over init() arguments: the run must be the one the sweep
        # created (same entity/project/id), or the sweep would never see its result.
        settings.entity, settings.project, settings.run_id = (
            sweep.entity,
            sweep.project,
            sweep.run_id,
        )
        settings.sweep_id = sweep.sweep_id
    if settings.resume == "must" and not settings.run_id:
        raise UsageError(
            "runyard.init: resume='must' needs the id of the run to resume: "
            "runyard.init(id='RUN_ID', resume='must') (or set RUNYARD_RUN_ID / WANDB_RUN_ID); "
            "resume='allow' with a new id starts a new run"
        )
    entity = check_name("entity", settings.entity or _default_entity(settings))
    project = check_name("project", settings.project or "uncategorized")
    explicit_id = settings.run_id is not None
    run_id = check_run_id(settings.run_id) if settings.run_id else new_run_id()
    context = _job_context
    run_config = _initial_config(
        config, config_exclude_keys, config_include_keys, context.config if context else None
    )
    if sweep is not None:
        run_config.update(sweep.params, allow_val_change=True)
        run_config.lock(sweep.params, reason="sweep")
    if isinstance(tags, str):
        raise TypeError(f"runyard.init: tags must be a list of strings, not one string {tags!r}")
    tag_list = list(tags) if tags is not None else _env_tags(settings.run_tags)
    if context is not None:
        tag_list += [t for t in context.tags if t not in tag_list]
    _check_texts(settings, tag_list)

    root: Path | None = None
    start = ResumeStart()
    if settings.mode != "disabled":
        try:
            root = resolve_root(settings.root_dir)
        except OSError as exc:
            raise _folder_error(exc, settings.root_dir) from None
        if settings.store is None:
            # RUNYARD_STORE and RUNYARD_BASE_URL are in settings already; this adds the server
            # `runyard login` made the default, else the embedded store.
            settings.store = resolve_store_url(None, root)
        # Child processes (launchers, agents) must find the same store.
        os.environ.setdefault("RUNYARD_DIR", str(root))
        if settings.mode == "online" and explicit_id and sweep is None:
            start = start_with_id(
                url=settings.store or "",
                api_key=settings.api_key,
                root=root,
                entity=entity,
                project=project,
                run_id=run_id,
                resume=settings.resume,
                init_timeout=_seconds(settings.init_timeout, 0.5),
                resume_timeout=_seconds(settings.resume_timeout, 30.0),
            )
            if start.stored_config is not None:
                stored = Config(start.stored_config)
                stored.update(run_config.as_dict(), allow_val_change=True)
                run_config._data.clear()
                run_config._data.update(stored.as_dict())
        elif settings.resume == "must" and settings.mode == "offline":
            start.resumed = True
    resumed = start.resumed
    now = time.time()
    meta = process_metadata()
    if context is not None:
        meta.update(context.meta)
        if context.start_time is not None:
            now = min(now, context.start_time)
    header: dict[str, Any] = {
        "entity": entity,
        "project": project,
        "run_id": run_id,
        # A resumed run keeps its stored name; a sweep's run the name its agent gave it.
        "name": settings.run_name
        or start.stored_name
        or (sweep.run_name if sweep is not None else None)
        or new_run_name(),
        "group": settings.run_group,
        "job_type": settings.job_type,
        "tags": tag_list,
        "notes": settings.run_notes,
        "config": run_config.as_dict(),
        "resume": resumed or settings.resume in ("allow", "must"),
        "join_sweep": sweep is not None,
        # A resumed run's summary so far: recovery replays this journal on top of it.
        "initial_summary": start.initial_summary,
        "initial_metric_defs": start.stored_metric_defs,
        "resumed": resumed,
        # The step and runtime this session starts from; provisional: assumed without the
        # store's answer, reconciled when it answers (sdk/resume.py).
        "start_step": start.start_step,
        "runtime_offset": start.runtime_offset,
        "provisional": start.provisional,
        "start_time": now,
        "host": hostname(),
        "pid": os.getpid(),
        "sweep_id": settings.sweep_id,
        "mode": settings.mode,
        "journal_id": uuid.uuid4().hex,
        "meta": meta,
    }
    try:
        run = Run(
            settings=settings,
            root=root,
            header=header,
            config=run_config,
            start_step=start.start_step,
            runtime_offset=start.runtime_offset,
            initial_summary=start.initial_summary,
            initial_metric_defs=start.stored_metric_defs,
            resume_start=start if explicit_id and settings.mode == "online" else None,
        )
    except OSError as exc:
        raise _folder_error(exc, root) from None
    if resumed and settings.run_name and start.stored_name not in (None, settings.run_name):
        run.name = settings.run_name  # init(name=...) renames the resumed run, as in W&B
    global _current
    with _lock:
        _active.append(run)
        _current = run
        if context is not None:
            context.runs.append(run)
    pkg = _package()
    pkg.run = run
    pkg.config = run.config
    pkg.summary = run.summary
    if not settings.silent and settings.mode != "disabled":
        verb = "resumed" if resumed else "started"
        where = settings.store if settings.mode == "online" else f"{root} (offline)"
        print(f"runyard: run {run.path} ({run.name}) {verb}; store: {where}", file=sys.stderr)
    return run


@dataclass
class _SweepAssignment:
    sweep_id: str
    run_id: str
    entity: str | None
    project: str | None
    params: dict[str, Any]
    run_name: str | None = None


#: Sweep runs this process already joined. A run id is joined once: a second ``init()`` in the
#: same job is an ordinary run, but a launcher reusing the process for the next job (with the
#: next assignment in its environment, e.g. via ``hydra.job.env_set``) joins that one.
_joined_sweep_runs: set[str] = set()


def _sweep_assignment(settings: Settings) -> _SweepAssignment | None:
    """The run an agent assigned to this process (environment set by ``runyard agent``)."""
    raw = os.environ.get("RUNYARD_SWEEP_PARAMS")
    sweep_id = os.environ.get("RUNYARD_SWEEP_ID")
    run_id = os.environ.get("RUNYARD_RUN_ID")
    if raw is None or not sweep_id or not run_id or run_id in _joined_sweep_runs:
        return None
    _joined_sweep_runs.add(run_id)
    try:
        params = loads_doc(raw)
    except ValueError:
        raise ValueError(
            f"runyard.init: RUNYARD_SWEEP_PARAMS is not valid JSON ({raw[:80]!r}); it is set "
            f"by `runyard agent`, do not set it by hand"
        ) from None
    return _SweepAssignment(
        sweep_id=sweep_id,
        run_id=run_id,
        entity=os.environ.get("RUNYARD_ENTITY") or settings.entity,
        project=os.environ.get("RUNYARD_PROJECT") or settings.project,
        params=params if isinstance(params, dict) else {},
        run_name=os.environ.get("RUNYARD_SWEEP_RUN_NAME") or None,
    )


def _initial_config(
    config: Any,
    exclude: Sequence[str] | None,
    include: Sequence[str] | None,
    under: dict[str, Any] | None = None,
) -> Config:
    """The run's config: ``under`` (a job context's), ``runyard.config`` as set before init,
    then ``init(config=...)``, each merged over the previous."""
    pre = _package().__dict__.get("config")
    run_config = Config()
    if isinstance(pre, Config):
        run_config = Config(pre.as_dict())
    elif pre is not None:
        try:
            run_config = Config(pre)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (from the value assigned to runyard.config)") from None
    if config is not None:
        run_config.update(config, allow_val_change=True)
    if under:
        merged = Config(under)
        merged.update(run_config.as_dict(), allow_val_change=True)
        run_config = merged
    if include:
        keep = set(include)
        for key in [k for k in run_config if k not in keep]:
            del run_config[key]
    for key in exclude or ():
        if key in run_config:
            del run_config[key]
    return run_config


# -- job context (integrations) ----------------------------------------------------------------


@dataclass
class JobContext:
    """What an integration knows about the job this process runs now.

    The Hydra job callback sets one per job (``set_job_context``) and clears it when the job
    ends. Every run ``init()`` starts while it is set is one of the job's runs: ``settings``
    are defaults (below ``init()`` arguments and a ``Settings`` passed to it, above the
    environment), ``config`` goes under the program's own config, ``meta`` is merged into the
    run's metadata, ``tags`` are added, ``start_time`` (if set) backdates the run's start, and
    the run is appended to ``runs`` so that the integration can end it with the job's status.
    Only the process that set it uses it: a forked child forgets it.
    """

    settings: Settings = field(default_factory=Settings)
    config: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    start_time: float | None = None
    runs: list[Run] = field(default_factory=list)


_job_context: JobContext | None = None


def set_job_context(context: JobContext | None) -> None:
    """Set (or clear, with ``None``) the current job's context; see :class:`JobContext`."""
    global _job_context
    _job_context = context


def job_context() -> JobContext | None:
    return _job_context


#: Text fields of a run and the characters each may hold (the server's journal batch limits).
_TEXT_LIMITS = (
    ("name", "run_name", 256),
    ("group", "run_group", 256),
    ("job_type", "job_type", 128),
)


def _check_texts(settings: Settings, tags: Sequence[Any]) -> None:
    """Refuse at init() what the store would refuse for the whole run, naming it: a run the
    store cannot create keeps every record out of it."""
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise TypeError(
                f"runyard.init: tags[{i}] is a {type(tag).__name__} ({tag!r}); tags are strings"
            )
        if "\x00" in tag:
            raise ValueError(f"runyard.init: tags[{i}] {tag!r} contains a NUL character")
    for argument, field_name, limit in _TEXT_LIMITS:
        value = getattr(settings, field_name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise TypeError(
                f"runyard.init: {argument} must be a string, not {type(value).__name__}"
            )
        if len(value) > limit or "\x00" in value:
            raise ValueError(
                f"runyard.init: {argument} {value[:60]!r} is longer than {limit} characters or "
                f"contains a NUL character"
            )
    notes = settings.run_notes
    if notes is not None and (not isinstance(notes, str) or "\x00" in notes):
        raise ValueError("runyard.init: notes must be a string without NUL characters")


def _default_entity(settings: Settings) -> str:
    """The entity of a run that names none: with a runyard server, the API key's user (the
    server says who the key is; a key it refuses fails here, not at exit), else the OS user."""
    from runyard import credentials

    url = (
        settings.store
        or os.environ.get("RUNYARD_BASE_URL")
        or os.environ.get("RUNYARD_STORE")
        or credentials.default_server()
    )
    if settings.mode == "disabled" or not credentials.is_http_url(url):
        return username()
    assert url is not None
    key = credentials.api_key_for(url, settings.api_key)
    saved = credentials.user_for(url, key)
    if settings.mode == "offline":
        return saved or username()
    # init() never waits longer than init_timeout for a server (issue 16): a server that does
    # not answer in time leaves the saved user (runyard login saves it) or the OS user.
    answer = _ask_viewer(url, key, _seconds(settings.init_timeout, 0.5))
    if isinstance(answer, BaseException):
        raise answer
    if answer is not None and answer.get("user"):
        return str(answer["user"])
    if saved is None:
        print(
            f"runyard: the server at {url} did not say whose API key this is in time; the "
            f"run's entity is {username()!r} (pass entity=... or set RUNYARD_ENTITY)",
            file=sys.stderr,
        )
    return saved or username()


def _ask_viewer(url: str, key: str | None, timeout: float) -> dict[str, Any] | BaseException | None:
    """The server's ``/viewer`` answer for ``key`` within ``timeout`` s: the answer, the
    authentication error (401/403), or None (no answer in time, or the server is down)."""
    from runyard.errors import AuthenticationError
    from runyard.store import open_store

    result: list[Any] = []

    def ask() -> None:
        try:
            store = open_store(url, key)
            result.append(store.viewer())  # type: ignore[attr-defined]
        except AuthenticationError as exc:
            result.append(exc)
        except Exception:
            result.append(None)

    thread = threading.Thread(target=ask, name="runyard-viewer", daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else None


def _env_tags(raw: str | None) -> list[str]:
    return [t.strip() for t in raw.split(",") if t.strip()] if raw else []


class RunFolderError(OSError):
    """The run's folder (``RUNYARD_DIR``, or the ``.runyard`` found from the working directory)
    cannot be written: the run cannot keep a journal there. ``str()`` is the message with the
    fix."""

    def __str__(self) -> str:
        return str(self.strerror)


#: The errors that mean "this folder cannot be written" (not a full disk: see sdk/journal.py).
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def _folder_error(exc: OSError, root: Any) -> OSError:
    """``exc`` as one runyard message when it says the run's folder cannot be written."""
    if exc.errno not in _NOT_WRITABLE:
        return exc
    where = exc.filename or root
    return RunFolderError(
        exc.errno,
        f"runyard.init: cannot write in {where} ({os.strerror(exc.errno or 0)}). The run keeps "
        f"its journal there (every logged record, until the store has it), so it cannot start "
        f"with {root or 'this folder'} as its folder. Choose a writable folder with "
        f"RUNYARD_DIR=/path/to/.runyard, or make this one writable "
        f"(mode='disabled' runs without tracking anything)",
    )


def _seconds(value: float | None, default: float) -> float:
    return default if value is None else float(value)


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- module-level shortcuts --------------------------------------------------------------------


def _require_run(what: str) -> Run:
    run = current_run()
    if run is None:
        orphan = _orphans[-1] if _orphans else None
        if orphan is not None:
            return orphan
        raise RuntimeError(f"runyard.{what}: call runyard.init() first")
    return run


def log(data: Any, step: int | None = None, commit: bool | None = None) -> None:
    """Log to the current run (see :meth:`Run.log`)."""
    run = _current
    if run is None:
        run = _require_run("log")
    run.log(data, step=step, commit=commit)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """Finish the current run, if any."""
    run = current_run()
    if run is not None:
        run.finish(exit_code=exit_code, quiet=quiet)


def alert(title: str, text: str, level: Any = None, wait_duration: Any = None) -> None:
    """Raise an alert on the current run (see :meth:`Run.alert`)."""
    _require_run("alert").alert(title, text, level=level, wait_duration=wait_duration)


def watch(models: Any, *args: Any, **kwargs: Any) -> None:
    """Watch torch modules with the current run (see :meth:`Run.watch`)."""
    _require_run("watch").watch(models, *args, **kwargs)


def unwatch(models: Any = None) -> None:
    """Remove the current run's torch hooks (see :meth:`Run.unwatch`)."""
    _require_run("unwatch").unwatch(models)


def save(glob_str: Any, base_path: Any = None, policy: str = "live") -> list[str]:
    """Save files with the current run (see :meth:`Run.save`)."""
    return _require_run("save").save(glob_str, base_path=base_path, policy=policy)


def log_code(*args: Any, **kwargs: Any) -> Any:
    """Save source code with the current run (see :meth:`Run.log_code`)."""
    return _require_run("log_code").log_code(*args, **kwargs)


def define_metric(name: str, **kwargs: Any) -> Any:
    """Define a metric of the current run (see :meth:`Run.define_metric`)."""
    return _require_run("define_metric").define_metric(name, **kwargs)


def mark_preempting() -> None:
    """Tell the store the current run may be preempted (see :meth:`Run.mark_preempting`)."""
    _require_run("mark_preempting").mark_preempting()


# -- process hooks -----------------------------------------------------------------------------


def _install_hooks() -> None:
    global _hooks_installed_pid
    pid = os.getpid()
    if _hooks_installed_pid == pid:
        return
    _hooks_installed_pid = pid
    atexit.register(_at_exit)
    _wrap_sys_exit()
    mp = sys.modules.get("multiprocessing")
    if mp is not None and mp.parent_process() is not None:
        # Pool and Process children leave through os._exit, which skips atexit.
        from multiprocessing import util

        util.Finalize(None, _at_exit, exitpriority=100)
    previous_hook = sys.excepthook

    def _excepthook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        _fail_all(exc)
        previous_hook(exc_type, exc, tb)

    if not getattr(sys.excepthook, "_runyard", False):
        _excepthook._runyard = True  # type: ignore[attr-defined]
        sys.excepthook = _excepthook
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:
            pass


_terminated_by: int | None = None
_exit_request: tuple[str | int | None, str | None] | None = None


def _wrap_sys_exit() -> None:
    original = sys.exit
    if getattr(original, "_runyard", False):
        return

    def exit(status: str | int | None = None) -> NoReturn:
        global _exit_request
        handled = sys.exc_info()[1]
        failure = None
        if handled is not None:
            failure = "".join(
                traceback.format_exception(type(handled), handled, handled.__traceback__)
            )
        _exit_request = (status, failure)
        original(status)

    exit._runyard = True  # type: ignore[attr-defined]
    sys.exit = exit


def finish_for_exit(run: Run, status: str | int | None = None) -> None:
    """End ``run`` as the process's exit says: killed by SIGTERM, failed for ``sys.exit(N≠0)``
    (with the traceback of the exception being handled then, e.g. by Hydra), else finished."""
    request = _exit_request
    if status is None and request is not None:
        status = request[0]
    if _terminated_by is not None:
        run._finish(
            "killed",
            exit_code=128 + _terminated_by,
            failure=f"terminated by {signal.Signals(_terminated_by).name}",
        )
    elif status not in (None, 0) and status is not False:
        code = status if isinstance(status, int) else 1
        failure = request[1] if request is not None and request[0] == status else None
        if failure is None:
            failure = f"the program exited with sys.exit({status!r})"
        run._finish("failed", exit_code=code, failure=failure)
    else:
        run.finish()


def _at_exit() -> None:
    for run in list(_active):
        if run._owner_pid == os.getpid():
            try:
                finish_for_exit(run)
            except Exception as exc:
                print(f"runyard: could not finish run {run.id}: {exc}", file=sys.__stderr__)


def _fail_all(exc: BaseException) -> None:
    for run in list(_active):
        if run._owner_pid == os.getpid():
            try:
                run.mark_failed(exc)
            except Exception:
                pass


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _terminated_by
    _terminated_by = signum
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
    raise SystemExit(128 + signum)


def _after_fork_in_child() -> None:
    global _lock, _hooks_installed_pid, _job_context, _current
    _lock = threading.RLock()
    _hooks_installed_pid = None
    _job_context = None
    _current = None
    for run in _active:
        run._abandon_after_fork()
        _orphans.append(run)
    _active.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
