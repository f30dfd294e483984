"""``runyard server``: serve a store over HTTP; ``runyard server keys|entities``: manage who may.

The ``keys`` and ``entities`` commands work directly on the store (no server needed), which is
how the first admin key is made. Only ``click`` is imported at module level: ``runyard --help``
must not pay for FastAPI.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

import click

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

server_store_option = click.option(
    "--store",
    envvar="RUNYARD_SERVER_STORE",
    help="Store URL: postgresql://... or sqlite:///... (default: the embedded SQLite store).",
)
server_dir_option = click.option(
    "--dir",
    "directory",
    envvar="RUNYARD_DIR",
    help="The .runyard folder of the embedded store (default: found up from here).",
)


def _error(message: str) -> click.ClickException:
    from runyard.cli import RunyardCLIError

    return RunyardCLIError(message)


def resolve_store_url(store: str | None, directory: str | None) -> str:
    """``store``, or the embedded SQLite store found like the SDK finds it."""
    if store:
        if store.startswith(("http://", "https://")):
            raise _error(
                f"--store {store} is a server URL; the server serves a database: give "
                f"postgresql://... or sqlite:///... (or nothing for the embedded store)"
            )
        return store
    from runyard.store.locate import default_store_url, resolve_root

    return default_store_url(resolve_root(directory))


def _open(store: str | None, directory: str | None) -> Any:
    from runyard.store import open_store
    from runyard.store.sql import SQLStore
    from runyard.store.sql_auth import AuthStore

    url = resolve_store_url(store, directory)
    try:
        sql_store = open_store(url)
    except Exception as exc:
        raise _error(f"cannot open the store {_safe_url(url)}: {exc}") from None
    assert isinstance(sql_store, SQLStore)
    return AuthStore(sql_store)


def _safe_url(url: str) -> str:
    try:
        import sqlalchemy as sa

        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS


@click.group(invoke_without_command=True)
@server_store_option
@server_dir_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes (they share nothing but the store).",
)
@click.option(
    "--auth/--no-auth",
    default=None,
    help="Require API keys. Default: off on a loopback host, always on on any other address.",
)
@click.option("--files-root", type=click.Path(file_okay=False), help="Where run files are kept.")
@click.option(
    "--max-body-mb",
    type=click.FloatRange(min=0.001),
    default=64.0,
    show_default=True,
    help="Largest request body (journal batches...), MiB; 413 above.",
)
@click.option(
    "--max-file-mb",
    type=click.FloatRange(min=0.001),
    default=1024.0,
    show_default=True,
    help="Largest file upload, MiB; 413 above.",
)
@click.option(
    "--artifacts",
    "artifacts_location",
    default=None,
    help="Where artifact blobs are kept: a directory or s3://bucket/prefix (S3-compatible; "
    "AWS_ENDPOINT_URL and the AWS_* variables configure it). Default: beside an SQLite store, "
    "else ~/.runyard/blobs.",
)
@click.option(
    "--presign/--no-presign",
    default=False,
    show_default=True,
    help="With s3:// artifacts, hand clients presigned URLs to download blobs from the bucket.",
)
@click.option(
    "--alert-webhook",
    envvar="RUNYARD_SERVER_ALERT_WEBHOOK",
    default=None,
    help="URL that run.alert() alerts are posted to (a Slack-compatible incoming webhook).",
)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@click.pass_context
def server(
    ctx: click.Context,
    store: str | None,
    directory: str | None,
    host: str,
    port: int,
    workers: int,
    auth: bool | None,
    files_root: str | None,
    max_body_mb: float,
    max_file_mb: float,
    artifacts_location: str | None,
    presign: bool,
    alert_webhook: str | None,
    access_log: bool,
) -> None:
    """Serve a store over HTTP for a team (`runyard server --store postgresql://...`).

    Subcommands `keys` and `entities` manage API keys, users and teams directly on the store.
    """
    if ctx.invoked_subcommand is not None:
        return
    from runyard.cli import console, err_console

    url = resolve_store_url(store, directory)
    loopback = is_loopback(host)
    if auth is False and not loopback:
        raise _error(
            f"--no-auth is only allowed on a loopback host (127.0.0.1, localhost, ::1); a "
            f"server bound to {host} always requires API keys"
        )
    auth_on = bool(auth) if auth is not None else not loopback
    auth_store = _open(url, None)  # runs the migrations once, before the workers start
    if auth_on and not auth_store.has_keys():
        err_console.print(
            "[yellow]auth is on and this store has no API key yet.[/] Create the admin key with:"
        )
        err_console.print(
            f"  runyard server keys create --admin --user NAME --store {_safe_url(url)}",
            highlight=False,
        )
    os.environ["RUNYARD_SERVER_STORE"] = url
    os.environ["RUNYARD_SERVER_AUTH"] = "1" if auth_on else "0"
    os.environ["RUNYARD_SERVER_MAX_BODY_MB"] = repr(max_body_mb)
    os.environ["RUNYARD_SERVER_MAX_FILE_MB"] = repr(max_file_mb)
    if artifacts_location:
        if "://" not in artifacts_location:
            artifacts_location = os.path.abspath(artifacts_location)
        os.environ["RUNYARD_SERVER_ARTIFACTS"] = artifacts_location
    else:
        os.environ.pop("RUNYARD_SERVER_ARTIFACTS", None)
    os.environ["RUNYARD_SERVER_PRESIGN"] = "1" if presign else "0"
    if alert_webhook:
        if not alert_webhook.startswith(("http://", "https://")):
            raise _error(
                f"--alert-webhook {alert_webhook!r} is not an http(s) URL; give the incoming "
                f"webhook's URL (e.g. https://hooks.slack.com/services/...)"
            )
        os.environ["RUNYARD_SERVER_ALERT_WEBHOOK"] = alert_webhook
    else:
        os.environ.pop("RUNYARD_SERVER_ALERT_WEBHOOK", None)
    if files_root:
        os.environ["RUNYARD_SERVER_FILES_ROOT"] = os.path.abspath(files_root)
    else:
        os.environ.pop("RUNYARD_SERVER_FILES_ROOT", None)
    problem = port_problem(host, port)
    if problem is not None:
        raise _error(problem)
    shown_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    console.print(
        f"runyard server on http://{shown_host}:{port}/api/v1 (store {_safe_url(url)}, "
        f"auth {'on' if auth_on else 'off'}, {workers} worker(s))",
        highlight=False,
    )
    sys.stdout.flush()
    import uvicorn

    uvicorn.run(
        "runyard.server.app:app_from_env",
        factory=True,
        host=host.strip("[]"),
        port=port,
        workers=workers,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "auto",
        http="httptools" if importlib.util.find_spec("httptools") else "auto",
        access_log=access_log,
        log_level="info",
        timeout_graceful_shutdown=10,
    )


def check_port(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be served (taken by another program), or None. Binds a socket
    with the options uvicorn uses (``SO_REUSEADDR``), so a port whose last connections are in
    TIME_WAIT counts as free, as it is for uvicorn."""
    import errno
    import socket

    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "taken"
            return exc.strerror or str(exc)
    return None


def free_port_near(host: str, port: int) -> int | None:
    """The first port after ``port`` that :func:`check_port` finds free (of the next 20)."""
    for candidate in range(port + 1, min(port + 21, 65536)):
        if check_port(host, candidate) is None:
            return candidate
    return None


def port_problem(host: str, port: int) -> str | None:
    """A message for a port that cannot be served (naming a runyard server already there,
    and a free port to use instead), or None."""
    why = check_port(host, port)
    if why is None:
        return None
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if why != "taken":
        return f"cannot listen on {shown}:{port}: {why}; pass another address or --port"
    other = ""
    try:
        import httpx

        health = httpx.get(f"http://{shown}:{port}/api/v1/health", timeout=0.5)
        if health.status_code == 200 and "auth" in health.json():
            other = f" (a runyard server answers there: http://{shown}:{port}/ may be it)"
    except Exception:
        pass
    near = free_port_near(host, port)
    suggestion = f"--port {near}" if near else "another --port"
    return f"port {port} on {shown} is taken by another program{other}; use {suggestion}"


# -- keys -----------------------------------------------------------------------------------------


@server.group()
def keys() -> None:
    """Create, list and revoke API keys (directly on the store)."""


def _fmt_time(ts: float | None) -> str:
    from runyard._time import format_time

    return format_time(ts)


@keys.command("create")
@click.option("--user", required=True, help="The key's user (its entity is created if absent).")
@click.option("--admin", is_flag=True, help="An admin key: every entity, and the admin routes.")
@click.option("--description", default="", help="What the key is for.")
@server_store_option
@server_dir_option
def keys_create(
    user: str, admin: bool, description: str, store: str | None, directory: str | None
) -> None:
    """Create an API key and print it (the only time it is shown)."""
    from runyard.cli import console
    from runyard.store.sql_auth import AuthError

    auth_store = _open(store, directory)
    try:
        created = auth_store.create_key(user, admin=admin, description=description)
    except AuthError as exc:
        raise _error(str(exc)) from None
    kind = "admin key" if admin else "key"
    console.print(f"created {kind} {created.key_id} for user {user}; it is shown only now:")
    click.echo(created.key)


@keys.command("list")
@click.option("--user", default=None, help="Only this user's keys.")
@server_store_option
@server_dir_option
def keys_list(user: str | None, store: str | None, directory: str | None) -> None:
    """List API keys (ids, never secrets)."""
    from rich.table import Table

    from runyard.cli import console

    found = _open(store, directory).list_keys(user)
    if not found:
        console.print("no API keys")
        return
    table = Table(title=f"{len(found)} key(s)", title_justify="left")
    for column in ("key_id", "user", "admin", "description", "created", "last used", "revoked"):
        table.add_column(column, no_wrap=column in ("key_id", "created"))
    for key in found:
        table.add_row(
            key.key_id,
            key.user,
            "yes" if key.admin else "",
            key.description or "",
            _fmt_time(key.created_at),
            _fmt_time(key.last_used_at),
            _fmt_time(key.revoked_at),
        )
    console.print(table)


@keys.command("revoke")
@click.argument("key_id")
@server_store_option
@server_dir_option
def keys_revoke(key_id: str, store: str | None, directory: str | None) -> None:
    """Revoke a key (KEY_ID, or the whole ry_... key): it stops working at once."""
    from runyard.cli import console
    from runyard.store.sql_auth import AuthError, split_key

    parts = split_key(key_id)
    if parts is not None:
        key_id = parts[0]
    try:
        revoked = _open(store, directory).revoke_key(key_id)
    except AuthError as exc:
        raise _error(str(exc)) from None
    console.print(f"revoked key {revoked.key_id} of user {revoked.user}")


# -- entities -------------------------------------------------------------------------------------


@server.group()
def entities() -> None:
    """Users and teams (directly on the store)."""


@entities.command("create")
@click.argument("name")
@click.option("--team", "kind", flag_value="team", default=True, help="A team (default).")
@click.option("--user", "kind", flag_value="user", help="A user.")
@server_store_option
@server_dir_option
def entities_create(name: str, kind: str, store: str | None, directory: str | None) -> None:
    """Create a team (or, with --user, a user)."""
    from runyard.cli import console
    from runyard.store.sql_auth import AuthError

    auth_store = _open(store, directory)
    try:
        existed = auth_store.get_entity(name) is not None
        entity = auth_store.create_entity(name, kind)
    except AuthError as exc:
        raise _error(str(exc)) from None
    if existed:
        console.print(f"{entity.kind} {entity.name} exists already (nothing changed)")
    else:
        console.print(f"created {entity.kind} {entity.name}")


@entities.command("add-member")
@click.argument("team")
@click.argument("user")
@click.option("--role", type=click.Choice(["member", "admin"]), default="member", show_default=True)
@server_store_option
@server_dir_option
def entities_add_member(
    team: str, user: str, role: str, store: str | None, directory: str | None
) -> None:
    """Make USER a member of TEAM: USER's keys may then use TEAM's projects."""
    from runyard.cli import console
    from runyard.store.sql_auth import AuthError

    try:
        entity = _open(store, directory).add_member(team, user, role)
    except AuthError as exc:
        raise _error(str(exc)) from None
    members = ", ".join(f"{m.user} ({m.role})" for m in entity.members)
    console.print(f"team {entity.name}: {members}")


@entities.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@server_store_option
@server_dir_option
def entities_list(fmt: str, store: str | None, directory: str | None) -> None:
    """List users and teams with their members."""
    import dataclasses
    import json

    from rich.table import Table

    from runyard.cli import console

    found = _open(store, directory).list_entities()
    if fmt == "json":
        click.echo(json.dumps([dataclasses.asdict(e) for e in found], indent=2))
        return
    if not found:
        console.print("no entities")
        return
    table = Table(title=f"{len(found)} entit(ies)", title_justify="left")
    for column in ("name", "kind", "members", "created"):
        table.add_column(column)
    for entity in found:
        table.add_row(
            entity.name,
            entity.kind,
            ", ".join(f"{m.user} ({m.role})" for m in entity.members),
            _fmt_time(entity.created_at),
        )
    console.print(table)
