"""The ``runyard`` command line: ``runs ls|show|export``, ``projects``, ``sync``."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from runyard import __version__
from runyard._time import format_time

# Pipes get a wide console so that tables stay one line per run (grep-able).
_WIDTH = None if sys.stdout.isatty() else max(shutil.get_terminal_size((200, 24)).columns, 120)
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)


class RunyardCLIError(click.ClickException):
    def show(self, file: Any = None) -> None:
        err_console.print(f"[bold red]error:[/] {self.message}")


def _api(store: str | None, directory: str | None) -> Any:
    from runyard.api import Api

    try:
        return Api(store=store, dir=directory)
    except Exception as exc:
        raise RunyardCLIError(f"cannot open the store: {exc}") from None


store_option = click.option(
    "--store",
    envvar=["RUNYARD_BASE_URL", "RUNYARD_STORE"],
    help="A runyard server (http(s)://...) or an SQLAlchemy URL (default: RUNYARD_BASE_URL, "
    "RUNYARD_STORE, the server of `runyard login`, else the embedded SQLite store).",
)
dir_option = click.option(
    "--dir", "directory", envvar="RUNYARD_DIR", help="The .runyard folder (default: found up)."
)


class _MainGroup(click.Group):
    """Store errors (a server refusing the key, a server that is down) are one clear line."""

    def invoke(self, ctx: click.Context) -> Any:
        from runyard.store.base import StoreError

        try:
            return super().invoke(ctx)
        except StoreError as exc:
            raise RunyardCLIError(str(exc)) from None


@click.group(cls=_MainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runyard")
def main() -> None:
    """runyard: self-hosted experiment tracking and sweeps."""


@main.group()
def runs() -> None:
    """List, show, export, rename, tag, stop and delete runs."""


def _fmt_time(ts: float | None) -> str:
    return format_time(ts)


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return str(seconds)
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _fmt_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, dict):
        if all(not isinstance(v, dict | list) for v in value.values()):
            return " ".join(f"{k}={_fmt_value(v)}" for k, v in value.items())
        return json.dumps(_json_safe(value), default=str)
    if isinstance(value, list):
        return json.dumps(_json_safe(value), default=str)
    return str(value)


_STATE_STYLE = {
    "running": "cyan",
    "finished": "green",
    "failed": "red",
    "crashed": "red",
    "killed": "yellow",
    "preempting": "yellow",
    "preempted": "yellow",
}


def _json_default(value: Any) -> Any:
    return str(value)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _run_row(run: Any, columns: Sequence[str]) -> dict[str, Any]:
    from runyard.query import field_value

    row: dict[str, Any] = {
        "id": run.id,
        "project": f"{run.entity}/{run.project}",
        "name": run.name,
        "state": run.state,
        "group": run.group,
        "created": _fmt_time(run.created_at),
        "runtime": round(run.runtime, 3),
    }
    for column in columns:
        row[column] = field_value(run.record, column)
    return row


@runs.command("ls")
@click.argument("project", required=False)
@click.option(
    "--filter", "-f", "filters", multiple=True, help="FIELD OP VALUE, e.g. 'state=finished'."
)
@click.option("--sort", "-s", "order", default="-created_at", show_default=True, help="Sort key.")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=None, help="At most N runs.")
@click.option("--columns", "-c", default="", help="Extra columns, e.g. 'config.lr,summary.loss'.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@store_option
@dir_option
def runs_ls(
    project: str | None,
    filters: tuple[str, ...],
    order: str,
    limit: int | None,
    columns: str,
    fmt: str,
    store: str | None,
    directory: str | None,
) -> None:
    """List runs (of PROJECT, 'entity/project' or 'project'; all projects if omitted)."""
    from runyard.query import QueryError, parse_expression

    api = _api(store, directory)
    extra = [c.strip() for c in columns.split(",") if c.strip()]
    try:
        spec: dict[str, Any] = {"$and": [parse_expression(f) for f in filters]} if filters else {}
        found = api.runs(project, filters=spec, order=order, limit=limit, per_page=500)
        rows = [_run_row(r, extra) for r in found]
    except (QueryError, ValueError) as exc:
        raise RunyardCLIError(str(exc)) from None
    if not extra and found:
        extra = _summary_columns(found)
        rows = [_run_row(r, extra) for r in found]
    _emit(rows, fmt, title=f"{len(rows)} run(s)" + (f" in {project}" if project else ""))


def _summary_columns(found: Sequence[Any], limit: int = 4) -> list[str]:
    keys: dict[str, None] = {}
    for run in found:
        for key, value in run.summary.items():
            if not key.startswith("_") and isinstance(value, int | float | dict):
                keys.setdefault(f"summary.{key}")
        if len(keys) >= limit:
            break
    return list(keys)[:limit]


def _emit(rows: list[dict[str, Any]], fmt: str, title: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(_json_safe(rows), indent=2, default=_json_default))
        return
    if fmt == "csv":
        _write_csv(rows, sys.stdout)
        return
    if not rows:
        console.print("no runs found")
        return
    table = Table(title=title, title_justify="left")
    for column in rows[0]:
        table.add_column(
            column,
            overflow="fold",
            no_wrap=column in ("id", "name", "state", "created"),
            justify="right" if column.startswith("summary.") else "left",
        )
    for row in rows:
        cells = []
        for column, value in row.items():
            text = _fmt_value(value)
            if column == "state":
                text = f"[{_STATE_STYLE.get(str(value), 'white')}]{text}[/]"
            cells.append(text)
        table.add_row(*cells)
    console.print(table)


def _write_csv(rows: Iterable[dict[str, Any]], out: Any) -> None:
    rows = list(rows)
    fields: dict[str, None] = {}
    for row in rows:
        for key in row:
            fields.setdefault(key)
    writer = csv.DictWriter(out, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(v) for k, v in row.items()})


def _csv_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(_json_safe(value))
    return value


def _get_run(api: Any, path: str) -> Any:
    try:
        return api.run(path)
    except (LookupError, ValueError) as exc:
        raise RunyardCLIError(str(exc)) from None


@runs.command("show")
@click.argument("run_path")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--console-lines", default=20, show_default=True, help="Last console lines shown.")
@store_option
@dir_option
def runs_show(
    run_path: str, fmt: str, console_lines: int, store: str | None, directory: str | None
) -> None:
    """Show one run: state, config, summary, metadata, last console lines."""
    api = _api(store, directory)
    run = _get_run(api, run_path)
    if fmt == "json":
        doc = {
            "path": run.path,
            "name": run.name,
            "state": run.state,
            "group": run.group,
            "job_type": run.job_type,
            "tags": run.tags,
            "notes": run.notes,
            "created_at": run.created_at,
            "runtime": run.runtime,
            "exit_code": run.exit_code,
            "failure": run.failure,
            "config": run.config,
            "summary": run.summary,
            "metadata": run.metadata,
            "metrics": run.metric_names(),
        }
        click.echo(json.dumps(_json_safe(doc), indent=2, default=_json_default))
        return
    style = _STATE_STYLE.get(run.state, "white")
    console.print(f"[bold]{run.path}[/]  {run.name}  [{style}]{run.state}[/]")
    meta = run.metadata
    facts = [
        ("created", _fmt_time(run.created_at)),
        ("runtime", _fmt_duration(run.runtime)),
        ("group", run.group),
        ("job type", run.job_type),
        ("tags", ", ".join(run.tags)),
        ("notes", run.notes),
        ("host", meta.get("host")),
        ("program", meta.get("program")),
        ("args", " ".join(meta.get("args", []))),
        ("python", meta.get("python")),
        ("git", _git_text(meta.get("git"))),
        ("exit code", run.exit_code),
    ]
    for label, value in facts:
        if value not in (None, ""):
            console.print(f"  [dim]{label:>9}[/] {value}")
    tree = Tree("[bold]config[/]")
    _add_tree(tree, run.config)
    console.print(tree)
    table = Table(title="summary", title_justify="left")
    table.add_column("key")
    table.add_column("value", justify="right")
    for key, value in sorted(run.summary.items()):
        table.add_row(key, _fmt_value(value))
    console.print(table)
    if run.failure:
        console.print("[bold red]failure[/]")
        console.print(run.failure, markup=False, highlight=False)
    lines = run.console(limit=console_lines) if console_lines > 0 else []
    if lines:
        console.print(f"[bold]console[/] (last {len(lines)} lines)")
        for stream, _ts, text in lines:
            prefix = "[red]err[/] " if stream == "stderr" else "    "
            console.print(
                prefix + text, markup=False, highlight=False
            ) if stream != "stderr" else console.print(prefix + text.replace("[", "\\["))


def _git_text(git: Any) -> str | None:
    if not git:
        return None
    text = f"{git.get('commit', '')[:12]} ({git.get('branch')})"
    return text + (" dirty" if git.get("dirty") else "")


def _add_tree(tree: Tree, value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(child, dict):
                _add_tree(tree.add(f"[bold]{key}[/]"), child)
            else:
                tree.add(f"{key}: {_fmt_value(child)}")


@runs.command("export")
@click.argument("run_path")
@click.option("--keys", "-k", default="", help="Comma-separated metric keys (default: all).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "jsonl"]), default="csv")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="File (default: stdout).")
@store_option
@dir_option
def runs_export(
    run_path: str,
    keys: str,
    fmt: str,
    output: str | None,
    store: str | None,
    directory: str | None,
) -> None:
    """Export a run's history rows as CSV, JSON or JSON lines."""
    api = _api(store, directory)
    run = _get_run(api, run_path)
    wanted = [k.strip() for k in keys.split(",") if k.strip()] or None
    rows = list(run.scan_history(keys=wanted))
    buffer = io.StringIO()
    if fmt == "csv":
        _write_csv(rows, buffer)
    elif fmt == "json":
        buffer.write(json.dumps(_json_safe(rows), default=_json_default))
        buffer.write("\n")
    else:
        for row in rows:
            buffer.write(json.dumps(_json_safe(row), default=_json_default) + "\n")
    if output:
        with open(output, "w", encoding="utf-8", newline="") as fh:
            fh.write(buffer.getvalue())
        err_console.print(f"wrote {len(rows)} rows to {output}")
    else:
        sys.stdout.write(buffer.getvalue())


@main.command("projects")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@store_option
@dir_option
def projects(fmt: str, store: str | None, directory: str | None) -> None:
    """List projects and their number of runs."""
    api = _api(store, directory)
    rows = [{"entity": e, "project": p, "runs": n} for e, p, n in api.projects()]
    _emit(rows, fmt, title="projects")


@main.command("sync")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--include-offline/--no-include-offline", default=True, show_default=True)
@store_option
@dir_option
def sync(
    paths: tuple[str, ...], include_offline: bool, store: str | None, directory: str | None
) -> None:
    """Upload journals not yet in the store: offline runs, and runs whose process died.

    PATHS (as `wandb sync DIR`): journal files (.journal), store folders (.runyard), their
    journal/ folders, or folders holding .journal files; without PATHS, the store's own
    journals. They go to the store that --store/--dir (or the current folder) names."""
    from runyard.api import Api
    from runyard.sdk.recovery import mark_stale_runs, pending_journals, recover_all

    chosen = _journals_of(paths) if paths else None
    try:
        api = Api(store=store, dir=directory, recover=False)
    except Exception as exc:
        raise RunyardCLIError(f"cannot open the store: {exc}") from None
    if chosen is not None:
        report = _recover_paths(chosen, api.store, include_offline)
    else:
        pending = pending_journals(api.root)
        if not pending:
            console.print(f"nothing to sync in {api.root}")
            return
        report = recover_all(api.root, api.store, include_offline=include_offline, quiet=True)
    for result in report.recovered:
        files = _sync_files(api, result.run_path, result.path.parent.parent)
        aside = (
            f", {result.quarantined} record(s) set aside in journal/quarantine/"
            if result.quarantined
            else ""
        )
        console.print(
            f"synced {result.run_path} ({result.records} records, {result.state}{files}{aside})"
        )
    mark_stale_runs(api.store)
    if report.live:
        console.print(f"{len(report.live)} journal(s) skipped: their runs are still running")
    if report.offline:
        console.print(f"{len(report.offline)} offline journal(s) left out (--no-include-offline)")
    console.print(f"{len(report.recovered)} run(s) synced to {api.store_url}")
    if report.failed:
        for failure in report.failed:
            err_console.print(f"[red]failed[/red] {failure.path}: {failure.error}")
        raise RunyardCLIError(
            f"{len(report.failed)} journal(s) could not be applied (kept in place; "
            f"`runyard sync` tries them again)"
        )


def _journals_of(paths: tuple[str, ...]) -> list[Path]:
    """The journals that ``runyard sync PATH...`` names, or a CLI error saying what a path that
    is none of them should have been."""
    from runyard.sdk.journal import JOURNAL_SUFFIX
    from runyard.sdk.recovery import pending_journals

    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise RunyardCLIError(
                f"{raw}: no such file or folder; give a run's journal (.journal file), a store "
                f"folder (.runyard) or a folder of journals"
            )
        if path.is_file():
            if not path.name.endswith(JOURNAL_SUFFIX):
                raise RunyardCLIError(
                    f"{raw} is not a runyard journal: expected a file ending in "
                    f"{JOURNAL_SUFFIX} (in a store folder's journal/), a store folder "
                    f"(.runyard) or a folder of journals"
                )
            found.append(path)
            continue
        journals = pending_journals(path) or sorted(path.glob(f"*{JOURNAL_SUFFIX}"))
        if not journals and (path / ".runyard").is_dir():
            journals = pending_journals(path / ".runyard")
        if not journals:
            raise RunyardCLIError(
                f"{raw} holds no runyard journals to sync: expected a store folder (.runyard, "
                f"with journal/*{JOURNAL_SUFFIX}), a folder of {JOURNAL_SUFFIX} files or a "
                f"journal file (synced runs' journals are gone: nothing is left to sync)"
            )
        found.extend(journals)
    return list(dict.fromkeys(p.resolve() for p in found))


def _recover_paths(journals: list[Path], store: Any, include_offline: bool) -> Any:
    """:func:`recover_all`'s report for the journals given (oldest session first)."""
    from runyard.sdk.recovery import RecoveryFailure, RecoveryReport, recover_journal
    from runyard.sdk.resume import journal_header

    report = RecoveryReport()
    dated = []
    for path in journals:
        header = journal_header(path)
        if header is None:
            report.failed.append(RecoveryFailure(path, "not a runyard journal (no run header)"))
            continue
        if not include_offline and header.get("mode") == "offline":
            report.offline.append(path)
            continue
        dated.append((float(header.get("start_time") or 0.0), path))
    for _, path in sorted(dated):
        try:
            result = recover_journal(path, store)
        except FileNotFoundError:
            continue
        except Exception as exc:
            report.failed.append(RecoveryFailure(path, str(exc)))
            continue
        if result is not None:
            report.recovered.append(result)
        elif path.exists():
            report.live.append(path)
    return report


def _sync_files(api: Any, run_path: str, root: Path | None = None) -> str:
    """Upload a synced run's saved files (``run.save``) that a server does not have yet."""
    if not api.store_url.lower().startswith(("http://", "https://")):
        return ""  # the embedded store keeps them in place already
    entity, project, run_id = run_path.split("/")
    folder = (root or api.root) / "files" / entity / project / run_id
    if not folder.is_dir():
        return ""
    have = {f.name: f.size for f in api.store.list_files(entity, project, run_id)}
    sent = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if have.get(name) != path.stat().st_size:
            api.store.put_file(entity, project, run_id, name, path)  # streamed from the file
            sent += 1
    return f", {sent} file(s) uploaded" if sent else ""


# -- sweeps ------------------------------------------------------------------------------------


#: ``runyard sweep`` options that take a value (W&B's ``wandb sweep`` ones included), for
#: telling a sweep.yaml or sweep id apart from an option's value
_SWEEP_VALUE_OPTIONS = frozenset(
    {
        "--project", "-p", "--entity", "-e", "--name", "--seed", "--run-cap", "--program",
        "--store", "--dir", "--update", "--settings", "--launch_config", "-c", "--queue", "-q",
        "--project_queue", "-pq",
    }
)  # fmt: skip
_SWEEP_STATE_FLAGS = ("--pause", "--resume", "--stop", "--cancel")


class _SweepGroup(click.Group):
    """``runyard sweep FILE`` creates a sweep; ``runyard sweep ls|show`` are subcommands.

    W&B's argument order works too: options before the file (``runyard sweep --project P
    --entity E sweep.yaml``), and the state flags before or after the sweep id (``runyard
    sweep --stop ID`` and ``runyard sweep ID --stop``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._wandb_order(list(args)))

    def _wandb_order(self, args: list[str]) -> list[str]:
        if not args or args[0] in self.commands or args[0] in ("-h", "--help"):
            return args
        positional: list[int] = []
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                positional += range(i + 1, len(args))
                break
            if arg.startswith("-"):
                if "=" not in arg and (arg in _SWEEP_VALUE_OPTIONS or arg in _SWEEP_STATE_FLAGS):
                    if arg in _SWEEP_STATE_FLAGS and (
                        i + 1 >= len(args) or args[i + 1].startswith("-")
                    ):
                        i += 1  # a W&B-style flag: the id is the positional argument
                        continue
                    i += 2
                    continue
                i += 1
                continue
            positional.append(i)
            i += 1
        flags = [
            j
            for j, a in enumerate(args)
            if a in _SWEEP_STATE_FLAGS and (j + 1 >= len(args) or args[j + 1].startswith("-"))
        ]
        if flags and len(positional) == 1:  # `runyard sweep ID --stop` / `--stop` then the id
            ref = args[positional[0]]
            rest = [a for j, a in enumerate(args) if j != positional[0]]
            flag_at = rest.index(args[flags[0]])
            return [*rest[: flag_at + 1], ref, *rest[flag_at + 1 :]]
        if positional and args[positional[0]] not in self.commands:
            return ["create", *args]
        return args

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        create = self.commands["create"]
        with formatter.section("Create a sweep (runyard sweep [OPTIONS] SWEEP_YAML)"):
            records = [
                p.get_help_record(ctx)
                for p in create.get_params(ctx)
                if isinstance(p, click.Option) and "--help" not in p.opts
            ]
            formatter.write_dl([r for r in records if r is not None])
        with formatter.section("Manage a sweep (runyard sweep --stop ID, or ID --stop)"):
            records = [p.get_help_record(ctx) for p in self.get_params(ctx)]
            formatter.write_dl([r for r in records if r is not None])
        self.format_commands(ctx, formatter)


def _open_sweep(api: Any, ref: str) -> Any:
    sweep_id = ref.strip("/").split("/")[-1]
    sweep = api.store.get_sweep(sweep_id)
    if sweep is None:
        raise RunyardCLIError(
            f"no sweep {ref!r} in {api.store_url}; list them with `runyard sweep ls`"
        )
    return sweep


@main.group(cls=_SweepGroup, invoke_without_command=True)
@click.option("--pause", "pause_id", metavar="ID", help="Pause a sweep: agents wait.")
@click.option("--resume", "resume_id", metavar="ID", help="Resume a paused sweep.")
@click.option("--stop", "stop_id", metavar="ID", help="Finish: no new runs, running runs end.")
@click.option("--cancel", "cancel_id", metavar="ID", help="Cancel: running runs are stopped too.")
@store_option
@dir_option
@click.pass_context
def sweep(
    ctx: click.Context,
    pause_id: str | None,
    resume_id: str | None,
    stop_id: str | None,
    cancel_id: str | None,
    store: str | None,
    directory: str | None,
) -> None:
    """Create a sweep from a sweep.yaml (`runyard sweep sweep.yaml`), or manage sweeps."""
    actions = [
        (pause_id, "paused", "paused: agents wait after their current run"),
        (resume_id, "running", "resumed"),
        (stop_id, "finished", "stopped: no new runs; running runs finish"),
        (cancel_id, "canceled", "canceled: agents stop their running runs"),
    ]
    chosen = [(ref, state, text) for ref, state, text in actions if ref]
    if ctx.invoked_subcommand is not None:
        if chosen:
            raise RunyardCLIError("--pause/--resume/--stop/--cancel take no other arguments")
        return
    if len(chosen) != 1:
        click.echo(ctx.get_help())
        if chosen:
            raise RunyardCLIError("give one of --pause, --resume, --stop or --cancel")
        return
    ref, state, text = chosen[0]
    api = _api(store, directory)
    current = _open_sweep(api, ref)
    if current.state in ("finished", "canceled") and state in ("running", "paused"):
        raise RunyardCLIError(f"sweep {current.id} is {current.state}; it cannot be {state}")
    api.store.set_sweep_state(current.id, state)
    console.print(f"sweep {current.path} {text}")


@sweep.command("create", hidden=True)
@click.argument("config_file", type=click.Path(dir_okay=False))
@click.option("--project", "-p", envvar="RUNYARD_PROJECT", help="Project (default: from the file).")
@click.option("--entity", "-e", envvar="RUNYARD_ENTITY", help="Entity (default: from the file).")
@click.option("--name", help="Sweep name (default: from the file).")
@click.option("--program", help="The sweep's program (over the file's).")
@click.option("--seed", type=int, default=None, help="Seed of the search (default: random).")
@click.option(
    "--run-cap",
    type=click.IntRange(min=1),
    default=None,
    help="The sweep's run_cap (over the file's); `runyard sweep ID --run-cap N` changes an "
    "existing sweep's (a finished sweep below the new cap runs again).",
)
@click.option(
    "--controller",
    is_flag=True,
    help="W&B's local controller: runyard needs none (its agents choose the runs); accepted.",
)
@click.option("--verbose", is_flag=True, help="Print the validated sweep config.")
@click.option("--update", metavar="ID", help="W&B's config update: not supported (says why).")
@click.option("--settings", hidden=True)
@click.option("--launch_config", "-c", "launch_config", hidden=True)
@click.option("--queue", "-q", hidden=True)
@click.option("--project_queue", "-pq", "project_queue", hidden=True)
@store_option
@dir_option
def sweep_create(
    config_file: str,
    project: str | None,
    entity: str | None,
    name: str | None,
    program: str | None,
    seed: int | None,
    run_cap: int | None,
    controller: bool,
    verbose: bool,
    update: str | None,
    settings: str | None,
    launch_config: str | None,
    queue: str | None,
    project_queue: str | None,
    store: str | None,
    directory: str | None,
) -> None:
    """Validate CONFIG_FILE and create the sweep; prints the agent command."""
    import os.path

    from runyard.sweeps.config import SweepConfigError
    from runyard.sweeps.create import create_sweep

    if launch_config or queue or project_queue:
        raise RunyardCLIError(
            "--launch_config/--queue/--project_queue are W&B Launch options; runyard runs "
            "sweeps with agents instead: create the sweep, then start `runyard agent ID` on "
            "each machine"
        )
    if update is not None:
        raise RunyardCLIError(
            f"--update: runyard does not change the search space of an existing sweep (its "
            f"runs were chosen from it); create a new sweep from {config_file}, or change the "
            f"run_cap with `runyard sweep {update} --run-cap N`"
        )
    if settings is not None:
        raise RunyardCLIError("--settings (W&B's hidden sweep settings) is not supported")
    if run_cap is not None and not os.path.isfile(config_file):
        _set_run_cap(_api(store, directory), config_file, run_cap)
        return
    overrides: dict[str, Any] = {}
    if run_cap is not None:
        overrides["run_cap"] = run_cap
    if program is not None:
        overrides["program"] = program
    api = _api(store, directory)
    try:
        record, config = create_sweep(
            api.store,
            config_file,
            project=project,
            entity=entity,
            name=name,
            overrides=overrides,
            seed=seed,
        )
    except SweepConfigError as exc:
        raise RunyardCLIError(f"{config_file} is not a valid sweep config:\n{exc}") from None
    except OSError as exc:
        raise RunyardCLIError(f"cannot read {config_file}: {exc.strerror}") from None
    for warning in config.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}")
    size = ""
    if config.method == "grid":
        size = f", {config.parameters.grid_size()} grid cells"
    if verbose:
        console.print_json(json.dumps(_json_safe(config.raw), default=_json_default))
    console.print(f"created sweep [bold]{record.path}[/] ({config.method}{size})")
    if controller:
        console.print(
            "--controller: nothing to run here; runyard has no separate controller (each "
            "agent chooses its runs, atomically, in the store)"
        )
    console.print("run an agent on each machine with:")
    console.print(f"  runyard agent {record.path}", highlight=False)


def _set_run_cap(api: Any, ref: str, run_cap: int) -> None:
    """``runyard sweep ID --run-cap N``: change an existing sweep's run_cap."""
    from runyard.store.base import StoreError

    current = _open_sweep(api, ref)
    try:
        updated = api.store.controller(current.id).set_run_cap(run_cap)
    except StoreError as exc:
        raise RunyardCLIError(str(exc)) from None
    before = current.config.get("run_cap")
    state = ""
    if updated.state != current.state:
        state = f"; {current.state} -> {updated.state}"
    console.print(f"sweep {updated.path}: run_cap {before or 'none'} -> {run_cap}{state}")


@sweep.command("ls")
@click.argument("project", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@store_option
@dir_option
def sweep_ls(project: str | None, fmt: str, store: str | None, directory: str | None) -> None:
    """List sweeps (of PROJECT, 'entity/project' or 'project')."""
    api = _api(store, directory)
    entity, name = api._split(project)
    rows = [
        {
            "id": s.id,
            "project": f"{s.entity}/{s.project}",
            "name": s.name or "",
            "method": s.method,
            "state": s.state,
            "runs": s.run_count,
            "created": _fmt_time(s.created_at),
        }
        for s in api.store.list_sweeps(entity, name)
    ]
    _emit(rows, fmt, title=f"{len(rows)} sweep(s)")


@sweep.command("show")
@click.argument("sweep_ref")
@click.option("--top", default=10, show_default=True, help="Number of best runs shown.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@store_option
@dir_option
def sweep_show(
    sweep_ref: str, top: int, fmt: str, store: str | None, directory: str | None
) -> None:
    """Show a sweep: state, progress, agents, and its best runs."""
    from runyard.sweeps.config import load_sweep_config

    api = _api(store, directory)
    record = _open_sweep(api, sweep_ref)
    controller = api.store.controller(record.id)
    config = load_sweep_config(record.config, require_program=False)
    best = controller.best(limit=top)
    trials = api.store.sweep_trials(record.id)
    metric = config.metric.name if config.metric else None
    if config.multi_objective:
        _sweep_show_front(record, config, trials, fmt, top)
        return
    if fmt == "json":
        doc = {
            "id": record.id,
            "path": record.path,
            "state": record.state,
            "method": record.method,
            "runs": len(trials),
            "run_cap": config.run_cap,
            "metric": metric,
            "goal": config.metric.goal if config.metric else None,
            "best": [
                {"run_id": t.run_id, "state": t.state, "value": v, "params": t.params}
                for t, v in best
            ],
            "config": record.config,
        }
        click.echo(json.dumps(_json_safe(doc), indent=2, default=_json_default))
        return
    _print_sweep_status(record, config, trials)
    if metric:
        console.print(f"metric: {metric} ({config.metric.goal if config.metric else ''})")
    table = Table(title=f"best {len(best)} run(s)", title_justify="left")
    table.add_column("run", no_wrap=True)
    table.add_column("state", no_wrap=True)
    if metric:
        table.add_column(metric, justify="right")
    names = list(config.parameters.parameters)
    for param in names:
        table.add_column(param.name)
    for trial, value in best:
        cells = [trial.run_id, f"[{_STATE_STYLE.get(trial.state, 'white')}]{trial.state}[/]"]
        if metric:
            cells.append(_fmt_value(value))
        cells.extend(_fmt_value(trial.params.get(p.name)) for p in names)
        table.add_row(*cells)
    console.print(table)


def _print_sweep_status(record: Any, config: Any, trials: list[Any]) -> None:
    """``runyard sweep show``'s first line: path, name, method, state, runs by state."""
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state] = counts.get(trial.state, 0) + 1
    cap = f"/{config.run_cap}" if config.run_cap else ""
    console.print(
        f"[bold]{record.path}[/] {record.name or ''}  {record.method}  [{record.state}]  "
        f"runs {len(trials)}{cap}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    )


def _sweep_show_front(record: Any, config: Any, trials: list[Any], fmt: str, top: int) -> None:
    """``runyard sweep show`` of a multi-objective sweep: its Pareto front."""
    from runyard.sweeps.front import sweep_front

    front = sweep_front(config, trials)
    if fmt == "json":
        doc = {
            "id": record.id,
            "path": record.path,
            "state": record.state,
            "method": record.method,
            "runs": len(trials),
            "run_cap": config.run_cap,
            **front.to_json(),
            "config": record.config,
        }
        click.echo(json.dumps(_json_safe(doc), indent=2, default=_json_default))
        return
    _print_sweep_status(record, config, trials)
    console.print("metrics: " + ", ".join(f"{m.name} ({m.goal})" for m in config.metrics))
    if front.hypervolume is not None and front.reference is not None:
        console.print(
            f"hypervolume {front.hypervolume:.6g} (reference point "
            + ", ".join(_fmt_value(v) for v in front.reference)
            + f"; {len(front.points)} runs with every metric)"
        )
    shown = front.front[:top]
    more = (
        f", {len(front.front) - len(shown)} more with --top"
        if len(shown) < len(front.front)
        else ""
    )
    table = Table(title=f"Pareto front: {len(front.front)} run(s){more}", title_justify="left")
    table.add_column("run", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for m in config.metrics:
        table.add_column(m.name, justify="right")
    names = list(config.parameters.parameters)
    for param in names:
        table.add_column(param.name)
    for trial, values in shown:
        cells = [trial.run_id, f"[{_STATE_STYLE.get(trial.state, 'white')}]{trial.state}[/]"]
        cells.extend(_fmt_value(v) for v in values)
        cells.extend(_fmt_value(trial.params.get(p.name)) for p in names)
        table.add_row(*cells)
    console.print(table)


@main.command("agent")
@click.argument("sweep_ref")
@click.option(
    "--project", "-p", help="The sweep's project, for a bare SWEEP_REF id (checked if given)."
)
@click.option(
    "--entity", "-e", help="The sweep's entity, for a bare SWEEP_REF id (checked if given)."
)
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after N runs.")
@click.option(
    "--forward-signals",
    "-f",
    is_flag=True,
    help="W&B's flag: runyard always passes an interruption on to the run (SIGTERM, then "
    "SIGKILL after 15 s); accepted.",
)
@click.option(
    "--heartbeat-interval",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="Seconds between heartbeats (and early-termination checks).",
)
@store_option
@dir_option
def agent(
    sweep_ref: str,
    project: str | None,
    entity: str | None,
    count: int | None,
    forward_signals: bool,
    heartbeat_interval: float,
    store: str | None,
    directory: str | None,
) -> None:
    """Run the sweep's command for each run handed out (SWEEP_REF: [entity/project/]id)."""
    from runyard.sweeps.agent import Agent, AgentError, AgentOptions

    api = _api(store, directory)
    record = _open_sweep(api, sweep_ref)
    for flag, given, actual in (
        ("--project", project, record.project),
        ("--entity", entity, record.entity),
    ):
        if given is not None and given != actual:
            raise RunyardCLIError(
                f"{flag} {given}: sweep {record.id} is in {record.entity}/{record.project}; "
                f"run `runyard agent {record.path}`"
            )
    try:
        Agent(
            api.store,
            record,
            api.root,
            AgentOptions(
                count=count,
                heartbeat_interval=heartbeat_interval,
                poll_interval=max(heartbeat_interval, 0.5),
            ),
            store_url=api.store_url,
            console=err_console,
        ).run()
    except KeyboardInterrupt:
        sys.exit(130)
    except AgentError as exc:
        raise RunyardCLIError(str(exc)) from None


# -- server credentials ------------------------------------------------------------------------


@main.command("login")
@click.argument("key_or_url", required=False)
@click.option("--host", help="The server's URL (default: RUNYARD_BASE_URL, or the saved one).")
@click.option("--key", help="API key (ry_...); asked for if the server needs one.")
@click.option("--relogin", is_flag=True, help="Ask for a key even if one is saved.")
def login(key_or_url: str | None, host: str | None, key: str | None, relogin: bool) -> None:
    """Use a runyard server as this machine's store, with an API key (like `wandb login`).

    `runyard login URL`, or W&B's form `runyard login [KEY] --host URL`. The key is checked,
    then saved (mode 0600) with its user in ~/.config/runyard/credentials.json; SDK runs
    (their entity defaults to that user), `runyard sweep`, `runyard agent` and
    `runyard.Api()` then use the server unless RUNYARD_BASE_URL/RUNYARD_STORE say otherwise.
    RUNYARD_API_KEY, if set, wins over the saved key. Already logged in, it says so unless
    --relogin.
    """
    from runyard import credentials
    from runyard.errors import Error
    from runyard.sdk.login import check_key, server_for
    from runyard.store.http import HTTPStore

    if key_or_url and credentials.is_http_url(key_or_url):
        host = host or key_or_url
    elif key_or_url:
        key = key or key_or_url
    try:
        url = server_for(host)
    except Error as exc:
        raise RunyardCLIError(str(exc)) from None
    if url is None:
        raise RunyardCLIError(
            "give the server's URL: `runyard login https://runyard.example.com` (or --host); "
            "without a server, runs use the embedded store and need no login"
        )
    saved = credentials.key_for(url)
    if key is None and saved and not relogin:
        user = credentials.user_for(url, saved)
        console.print(
            f"already logged in to {url}"
            + (f" as {user}" if user else "")
            + "; use --relogin to change the key",
            highlight=False,
        )
        return
    health = HTTPStore(url, key or "-")._json("GET", "/health")
    if key is None and isinstance(health, dict) and health.get("auth"):
        key = click.prompt(f"API key for {url}", hide_input=True).strip()
    user = None
    if key:
        try:
            user = check_key(url, key)
        except Error as exc:
            raise RunyardCLIError(str(exc)) from None
    path = credentials.login(url, key, user=user)
    who = f" as {user}" if user else ""
    console.print(f"logged in to {url}{who}; saved in {path}", highlight=False)


@main.command("logout")
@click.argument("url", required=False)
def logout(url: str | None) -> None:
    """Forget the saved key of URL (default: the server of `runyard login`)."""
    from runyard import credentials

    forgotten = credentials.logout(url)
    if forgotten is None:
        console.print("not logged in" + (f" to {url}" if url else ""))
        return
    console.print(f"logged out of {forgotten}", highlight=False)


# -- server ------------------------------------------------------------------------------------
# `runyard server [...]`, `runyard server keys|entities ...` live in runyard.server.cli (click
# only at import; FastAPI is imported when the server starts).
from runyard.server.cli import server as _server_command  # noqa: E402

main.add_command(_server_command)


@main.command("ui")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--dir",
    "directory",
    envvar="RUNYARD_DIR",
    help="The .runyard folder of the embedded store, or the folder that holds it (default: "
    "found up from here).",
)
@click.option(
    "--create", is_flag=True, help="Start an empty store where none is (--dir, or ./.runyard)."
)
@click.option("--no-browser", is_flag=True, help="Only print the URL; open no browser.")
@click.pass_context
def ui(
    ctx: click.Context, port: int, directory: str | None, create: bool, no_browser: bool
) -> None:
    """The dashboard over the embedded store, on http://127.0.0.1:PORT/ (this machine only).

    The same server as `runyard server`, bound to 127.0.0.1 without API keys. A team's server
    shows the same dashboard at its own address. A missing --dir (a typo) or a folder without
    a store is refused unless --create.
    """
    from runyard.server.cli import port_problem

    root = _ui_store(directory, create)
    problem = port_problem("127.0.0.1", port)
    if problem is not None:  # before the URL: never a browser on someone else's server
        raise RunyardCLIError(problem)
    url = f"http://127.0.0.1:{port}/"
    console.print(f"runyard dashboard: {url}", highlight=False)
    console.print(f"store: {root}", highlight=False)
    if not no_browser:
        import threading

        threading.Thread(target=_open_browser_when_up, args=(url,), daemon=True).start()
    ctx.invoke(
        _server_command,
        store=None,
        directory=str(root),
        host="127.0.0.1",
        port=port,
        workers=1,
        auth=False,
        files_root=None,
        max_body_mb=64.0,
        max_file_mb=1024.0,
        # the embedded store's alerts go where the SDK would send them (docs/system.md)
        alert_webhook=os.environ.get("RUNYARD_SERVER_ALERT_WEBHOOK")
        or os.environ.get("RUNYARD_ALERT_WEBHOOK"),
        access_log=False,
    )


def _ui_store(directory: str | None, create: bool) -> Any:
    """The ``.runyard`` folder `runyard ui` shows: ``directory`` (or the ``.runyard`` inside
    it), else the one found up from here; refused when it holds no store, unless ``create``."""
    from pathlib import Path

    from runyard.store.locate import DB_NAME, DIR_NAME, original_cwd

    if directory:
        given = Path(directory).expanduser().resolve()
        if (given / DIR_NAME / DB_NAME).is_file() and not (given / DB_NAME).is_file():
            return given / DIR_NAME  # the project's folder was given
        if (given / DB_NAME).is_file() or create:
            given.mkdir(parents=True, exist_ok=True)
            return given
        what = "does not exist" if not given.exists() else "holds no runyard store"
        raise RunyardCLIError(
            f"--dir {directory}: {given} {what} (no {DB_NAME}). Give the .runyard folder of "
            f"your runs (or the folder that holds it), or pass --create to start an empty "
            f"store there"
        )
    start = original_cwd().resolve()
    for parent in (start, *start.parents):
        if (parent / DIR_NAME).is_dir():
            return parent / DIR_NAME
    if create:
        (start / DIR_NAME).mkdir()
        return start / DIR_NAME
    raise RunyardCLIError(
        f"no {DIR_NAME} folder in {start} or above it: run `runyard ui` in the folder of your "
        f"training runs, give it with --dir, or pass --create to start an empty store here"
    )


def _open_browser_when_up(url: str, timeout: float = 30.0) -> None:
    """Open ``url`` in a browser once the server answers (nothing happens without one)."""
    import time
    import urllib.request
    import webbrowser

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}api/v1/health", timeout=1.0):
                break
        except OSError:
            time.sleep(0.2)
    else:
        return
    webbrowser.open(url)


if __name__ == "__main__":  # pragma: no cover
    main()


def _artifact_group() -> click.Command:
    import runyard.artifacts.cli as artifacts_cli

    group: click.Command = artifacts_cli.artifact
    return group


main.add_command(_artifact_group())

import runyard.cli_manage  # noqa: E402,F401 - registers `runyard runs rename|tag|stop|delete`
