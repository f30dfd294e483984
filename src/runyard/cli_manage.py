"""``runyard runs rename|tag|stop|delete``: changing and deleting stored runs.

Registered on the ``runs`` group by :mod:`runyard.cli`. Every command goes through
:class:`runyard.Api` (``Store.update_run``/``delete_run``/``mark_run_state``), so the same
commands work on the embedded store and on a server (which checks the key's entity).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from runyard.cli import RunyardCLIError, _api, _get_run, console, dir_option, runs, store_option
from runyard.store.base import LIVE_RUN_STATES

#: the states `runs stop` takes and `runs delete` refuses without --force (as the store does)
STOPPABLE = ("pending", *LIVE_RUN_STATES)


def _fmt_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(n)


def _update(run: Any) -> None:
    from runyard.store.base import StoreError

    try:
        run.update()
    except (StoreError, LookupError) as exc:
        raise RunyardCLIError(str(exc)) from None


@runs.command("rename")
@click.argument("run_path")
@click.argument("name")
@store_option
@dir_option
def runs_rename(run_path: str, name: str, store: str | None, directory: str | None) -> None:
    """Give RUN_PATH ('entity/project/id', 'project/id', an id or its prefix) a new NAME."""
    run = _get_run(_api(store, directory), run_path)
    old = run.name
    run.name = name
    _update(run)
    console.print(f"renamed {run.path}: {old} -> {run.name}", highlight=False)


@runs.command("tag")
@click.argument("run_path")
@click.argument("tags", nargs=-1)
@click.option("--remove", "-r", "removed", multiple=True, help="A tag to take off (repeatable).")
@click.option("--clear", is_flag=True, help="Take every tag off first.")
@store_option
@dir_option
def runs_tag(
    run_path: str,
    tags: tuple[str, ...],
    removed: tuple[str, ...],
    clear: bool,
    store: str | None,
    directory: str | None,
) -> None:
    """Add TAGS to a run (and take off those of --remove); prints the run's tags after."""
    if not tags and not removed and not clear:
        raise RunyardCLIError(
            "give tags to add (`runyard runs tag RUN best v2`), --remove TAG or --clear"
        )
    run = _get_run(_api(store, directory), run_path)
    current = [] if clear else list(run.tags)
    missing = [t for t in removed if t not in current]
    current = [t for t in current if t not in removed]
    current += [t for t in tags if t not in current]
    run.tags = current
    _update(run)
    shown = ", ".join(run.tags) or "(none)"
    console.print(f"tags of {run.path}: {shown}", highlight=False)
    if missing:
        console.print(f"[yellow]not tagged:[/] {', '.join(missing)}", highlight=False)


@runs.command("stop")
@click.argument("run_path")
@store_option
@dir_option
def runs_stop(run_path: str, store: str | None, directory: str | None) -> None:
    """Stop a running (or preempting, or pending) run: it becomes `stopped` (it keeps that
    state whatever its process reports after). Its process learns it within seconds:
    `run.should_stop` turns true (and `log()` raises runyard.StopRun with
    RUNYARD_STOP_RAISE=1); a wandb client is interrupted, as W&B's stop button does."""
    run = _get_run(_api(store, directory), run_path)
    if run.state not in STOPPABLE:
        raise RunyardCLIError(f"run {run.path} is {run.state}, not running: nothing to stop")
    changed = run._store.mark_run_state(
        run.record.pk, "stopped", "stopped from runyard (runyard runs stop)", True
    )
    if not changed and run.state == "pending":
        changed = run._store.mark_run_state(
            run.record.pk, "stopped", "stopped from runyard (runyard runs stop)", False
        )
    if not changed:
        raise RunyardCLIError(f"run {run.path} ended meanwhile: nothing to stop")
    console.print(
        f"stopped {run.path} ({run.name}); its process is told on its next check (run.should_stop)",
        highlight=False,
    )


@runs.command("delete")
@click.argument("run_paths", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
@click.option("--force", is_flag=True, help="Delete running runs too.")
@click.option("--delete-artifacts", is_flag=True, help="Delete the artifacts they logged too.")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@store_option
@dir_option
def runs_delete(
    run_paths: tuple[str, ...],
    yes: bool,
    force: bool,
    delete_artifacts: bool,
    dry_run: bool,
    store: str | None,
    directory: str | None,
) -> None:
    """Delete runs with their history, console, system metrics and files. Asks first
    (unless --yes) after listing what goes: each run, its files and their size."""
    from runyard.store.base import RunActiveError, StoreError

    api = _api(store, directory)
    found: dict[str, Any] = {}
    for path in run_paths:
        run = _get_run(api, path)
        found.setdefault(run.path, run)
    plans = []
    for run in found.values():
        if run.state in STOPPABLE and not force:
            raise RunyardCLIError(
                f"run {run.path} is {run.state}: stop it first (`runyard runs stop {run.id}`) "
                f"or delete it anyway with --force"
            )
        plans.append((run, run.delete(force=force, dry_run=True)))
    files = sum(p.files for _r, p in plans)
    size = sum(p.file_bytes for _r, p in plans)
    for run, plan in plans:
        console.print(
            f"  {run.path}  {run.name}  {run.state}  {plan.history_rows} step(s), "
            f"{plan.files} file(s), {_fmt_size(plan.file_bytes)}",
            highlight=False,
        )
    what = f"{len(plans)} run(s), {files} file(s), {_fmt_size(size)}"
    if dry_run:
        console.print(f"would delete {what} (dry run: nothing deleted)", highlight=False)
        return
    if not yes:
        try:
            agreed = click.confirm(f"delete {what}?", default=False)
        except click.Abort:  # no answer (end of input): nothing happens
            sys.stderr.write("\n")
            raise RunyardCLIError(
                f"nothing deleted: deleting {what} needs a 'y' (or pass --yes)"
            ) from None
        if not agreed:
            console.print("nothing deleted")
            return
    freed = 0
    for run, _plan in plans:
        try:
            report = run.delete(delete_artifacts=delete_artifacts, force=force)
        except (RunActiveError, StoreError, LookupError) as exc:
            raise RunyardCLIError(f"{run.path}: {exc}") from None
        freed += report.freed_bytes
    console.print(
        f"deleted {what}; {_fmt_size(freed)} freed (content another run or an artifact "
        f"holds is kept)",
        highlight=False,
    )
