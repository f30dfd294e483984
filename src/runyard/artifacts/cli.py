"""``runyard artifact ls|show|get|put|alias|rm|gc`` (``put``/``get`` mirror ``wandb artifact``)."""

from __future__ import annotations

import json
from typing import Any

import click

from runyard.cli import RunyardCLIError, _api, console, dir_option, store_option


def _fmt_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(n)


def _ref(api: Any, ref: str) -> tuple[str, str, str, str]:
    from runyard.artifacts.sdk import split_ref

    if ref.count("/") < 1:
        raise RunyardCLIError(
            f"{ref!r}: give 'project/name[:alias]' or 'entity/project/name[:alias]'"
        )
    return split_ref(ref, api.default_entity, "")


def _wrap(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from runyard.artifacts.manifest import ArtifactError
    from runyard.blobs import BlobError

    try:
        return fn(*args, **kwargs)
    except (ArtifactError, BlobError, ValueError, OSError) as exc:
        raise RunyardCLIError(str(exc)) from None


@click.group("artifact")
def artifact() -> None:
    """Artifacts: versioned datasets and models (docs/artifacts.md)."""


@artifact.command("ls")
@click.argument("project")
@click.option("--type", "-t", "type_", default=None, help="Only artifacts of this type.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@store_option
@dir_option
def ls(project: str, type_: str | None, fmt: str, store: str | None, directory: str | None) -> None:
    """List the artifacts of PROJECT ('entity/project' or 'project')."""
    api = _api(store, directory)
    found = _wrap(api.artifact_collections, project, type_)
    if fmt == "json":
        click.echo(json.dumps([c.__dict__ for c in found], indent=2))
        return
    if not found:
        console.print("no artifacts found")
        return
    from rich.table import Table

    table = Table(title=f"{len(found)} artifact(s) in {project}", title_justify="left")
    for column in ("type", "name", "versions", "latest"):
        table.add_column(column)
    for c in found:
        latest = "-" if c.latest is None else f"v{c.latest}"
        table.add_row(c.type, c.name, str(c.version_count), latest)
    console.print(table)


@artifact.command("show")
@click.argument("ref")
@click.option("--files/--no-files", default=True, help="List the files of the version.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@store_option
@dir_option
def show(ref: str, files: bool, fmt: str, store: str | None, directory: str | None) -> None:
    """Show a version (REF: [entity/]project/name[:vN|alias]), or all versions of a name."""
    from runyard.artifacts import artifact_store_for

    api = _api(store, directory)
    entity, project, name, version = _ref(api, ref)
    arts = artifact_store_for(api.store)
    if ":" not in ref:
        versions = _wrap(arts.versions, entity, project, name)
        if fmt == "json":
            click.echo(json.dumps([_version_doc(v, False) for v in versions], indent=2))
            return
        from rich.table import Table

        table = Table(title=f"{entity}/{project}/{name}", title_justify="left")
        for column in ("version", "aliases", "size", "files", "created by", "digest"):
            table.add_column(column)
        for v in versions:
            table.add_row(
                f"v{v.version}",
                ", ".join(v.aliases),
                _fmt_size(v.size),
                str(v.file_count),
                v.created_by or "-",
                v.digest,
            )
        console.print(table)
        return
    record = _wrap(arts.get, entity, project, name, version)
    if fmt == "json":
        click.echo(json.dumps(_version_doc(record, files), indent=2))
        return
    console.print(f"[bold]{record.qualified_name}[/] ({record.type})")
    console.print(f"aliases: {', '.join(record.aliases) or '-'}")
    console.print(
        f"size: {_fmt_size(record.size)} in {record.file_count} file(s); digest {record.digest}"
    )
    console.print(f"created by run: {record.created_by or '-'}")
    if record.source:
        console.print(f"links: {record.source}")
    if record.metadata:
        console.print(f"metadata: {json.dumps(record.metadata)}")
    used = arts.used_by(record)
    console.print(f"used by: {', '.join(r.path for r in used) or '-'}")
    if files:
        for e in record.entries or []:
            console.print(f"  {e.path}  {_fmt_size(e.size)}  {e.ref or e.blob}")


def _version_doc(v: Any, files: bool) -> dict[str, Any]:
    doc = {
        "name": v.qualified_name,
        "type": v.type,
        "version": f"v{v.version}",
        "aliases": v.aliases,
        "digest": v.digest,
        "size": v.size,
        "file_count": v.file_count,
        "metadata": v.metadata,
        "created_by": v.created_by,
        "created_at": v.created_at,
        "source": v.source,
    }
    if files and v.entries is not None:
        doc["files"] = {e.path: e.to_json() for e in v.entries}
    return doc


@artifact.command("get")
@click.argument("ref")
@click.option("--root", default=None, help="Where to put the files (default ./artifacts/NAME:vN).")
@click.option("--type", "type_", default=None, help="Fail unless the artifact has this type.")
@store_option
@dir_option
def get(
    ref: str, root: str | None, type_: str | None, store: str | None, directory: str | None
) -> None:
    """Download a version (REF: [entity/]project/name[:vN|alias]), verified."""
    api = _api(store, directory)
    art = _wrap(api.artifact, ref, type_)
    path = _wrap(art.download, root)
    click.echo(f"{art.qualified_name} downloaded to {path}")


@artifact.command("put")
@click.argument("path", type=click.Path(exists=True))
@click.option("--name", "-n", "name", required=True, help="[entity/]project/name of the artifact.")
@click.option("--type", "-t", "type_", default="dataset", show_default=True)
@click.option("--description", "-d", default=None)
@click.option("--alias", "-a", "aliases", multiple=True, help="An alias (repeatable).")
@click.option("--metadata", "-m", default=None, help="A JSON object of metadata.")
@store_option
@dir_option
def put(
    path: str,
    name: str,
    type_: str,
    description: str | None,
    aliases: tuple[str, ...],
    metadata: str | None,
    store: str | None,
    directory: str | None,
) -> None:
    """Log the file or folder PATH as a new version (a run of job type 'cli_put' logs it)."""
    import os
    from pathlib import Path

    import runyard
    from runyard.artifacts.artifact import Artifact

    parts = name.split(":", 1)[0].split("/")
    if len(parts) not in (2, 3):
        raise RunyardCLIError(f"--name {name!r}: give 'project/name' or 'entity/project/name'")
    entity = parts[0] if len(parts) == 3 else None
    project, art_name = parts[-2], parts[-1]
    meta = None
    if metadata:
        try:
            meta = json.loads(metadata)
        except ValueError as exc:
            raise RunyardCLIError(f"--metadata is not JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise RunyardCLIError("--metadata must be a JSON object")
    art = _wrap(Artifact, art_name, type_, description=description, metadata=meta)
    if Path(path).is_dir():
        _wrap(art.add_dir, path)
    else:
        _wrap(art.add_file, path, policy="immutable")
    settings = runyard.Settings(silent=True, console="off", disable_git=True)
    if store:
        settings.store = store
    if directory:
        os.environ["RUNYARD_DIR"] = directory
    run = runyard.init(project=project, entity=entity, job_type="cli_put", settings=settings)
    try:
        logged = _wrap(run.log_artifact, art, aliases=list(aliases))
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
    note = " (same content as an existing version)" if logged._record.reused else ""
    click.echo(f"{logged.qualified_name}{note} aliases: {', '.join(logged.aliases)}")


@artifact.command("alias")
@click.argument("ref")
@click.argument("aliases", nargs=-1, required=True)
@click.option("--remove", "-r", is_flag=True, help="Remove the aliases instead of adding them.")
@store_option
@dir_option
def alias(
    ref: str, aliases: tuple[str, ...], remove: bool, store: str | None, directory: str | None
) -> None:
    """Add (or --remove) ALIASES on the version REF; an alias moves from the version that had it."""
    api = _api(store, directory)
    art = _wrap(api.artifact, ref)
    record = art._record
    if remove:
        new = _wrap(art._store.set_aliases, record, (), list(aliases))
    else:
        new = _wrap(art._store.set_aliases, record, list(aliases), ())
    click.echo(f"{new.qualified_name} aliases: {', '.join(new.aliases) or '-'}")


@artifact.command("rm")
@click.argument("ref")
@click.option("--force", is_flag=True, help="Delete even though the version has aliases.")
@store_option
@dir_option
def rm(ref: str, force: bool, store: str | None, directory: str | None) -> None:
    """Delete a version (REF needs :vN or an alias) and the blobs no other version needs."""
    if ":" not in ref:
        raise RunyardCLIError(f"{ref!r}: name the version to delete (name:vN or name:alias)")
    api = _api(store, directory)
    art = _wrap(api.artifact, ref)
    freed = _wrap(art._store.delete, art._record, force=force)
    click.echo(f"deleted {art.qualified_name}; {_fmt_size(freed)} freed")


@artifact.command("gc")
@click.option("--dry-run", is_flag=True, help="Only say what would be deleted.")
@store_option
@dir_option
def gc(dry_run: bool, store: str | None, directory: str | None) -> None:
    """Delete blobs no artifact version references (never those of an upload in flight)."""
    from runyard.artifacts import artifact_store_for

    api = _api(store, directory)
    report = _wrap(artifact_store_for(api.store).gc, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {report.deleted_blobs} blob(s), {_fmt_size(report.freed_bytes)}; "
        f"{report.kept_leased} kept for uploads in flight"
    )
