"""What ``wandb.Api()`` reads: runs with filters, a run's history, summary, config, files and
console, a sweep's runs (through :mod:`.sweeps`).

The fields are added to the project and run nodes (:data:`~.nodes.PROJECT_FIELDS`,
:data:`~.nodes.RUN_FIELDS`), so every query shape that reaches a project or a run gets them:

* ``project { runs(filters, order, first, after) runCount(filters) }``: W&B's MongoDB-style
  filters and order strings, translated to runyard's (:mod:`runyard.query`) and run by
  :meth:`Store.query_runs` (in SQL for the SQL stores);
* ``run { history(samples, minStep, maxStep) sampledHistory(specs) historyKeys
  parquetHistory }``: rows from :meth:`Store.history` (``Run.history()``; ``scan_history()``
  pages through ``history`` after ``parquetHistory`` answers that nothing is exported);
* ``run { files(names, pattern, first, after) fileCount }``: the run's files, each with a
  signed download URL (:mod:`.uploads`);
* ``run { logLines(last, first, after) logLineCount }``: the console.
"""

from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any

from runyard.compat.wandb import convert
from runyard.compat.wandb.context import Context
from runyard.compat.wandb.graphql import Field, GraphQLFieldError
from runyard.compat.wandb.ids import node_id
from runyard.compat.wandb.nodes import PROJECT_FIELDS, RUN_FIELDS, iso, run_node
from runyard.compat.wandb.uploads import run_file_path, signed_url
from runyard.query import QueryError
from runyard.store.base import RunRecord

#: W&B filter and order field names that differ from runyard's
_FIELD_NAMES = {
    "name": "id",  # W&B's run "name" is its id; its display name is "displayName"
    "displayName": "name",
    "display_name": "name",
    "summaryMetrics": "summary",
    "heartbeatAt": "created_at",
    "created_at": "created_at",
    "createdAt": "created_at",
    "jobType": "job_type",
}
MAX_PAGE = 1000
MAX_HISTORY = 100_000


def _field(name: str) -> str:
    if name in _FIELD_NAMES:
        return _FIELD_NAMES[name]
    if name.startswith("config.") and name.endswith(".value"):
        return name[: -len(".value")]
    if name.startswith("summary_metrics."):
        return "summary." + name[len("summary_metrics.") :]
    return name


def _value(field: str, value: Any) -> Any:
    if field == "created_at" and isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _value(field, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(field, v) for v in value]
    return value


def translate_filter(spec: Any) -> Any:
    """A W&B run filter as a :mod:`runyard.query` filter."""
    if isinstance(spec, list):
        return [translate_filter(s) for s in spec]
    if not isinstance(spec, dict):
        return spec
    out: dict[str, Any] = {}
    for key, cond in spec.items():
        if key.startswith("$"):
            out[key] = translate_filter(cond)
        else:
            field = _field(key)
            out[field] = _value(field, cond)
    return out


def translate_order(order: Any) -> str | None:
    if not isinstance(order, str) or not order.strip():
        return "-created_at"
    order = order.strip()
    sign = "-" if order.startswith("-") else ""
    return sign + _field(order.lstrip("+-"))


def _parse_json(value: Any, what: str) -> Any:
    if value is None or isinstance(value, dict | list):
        return value
    try:
        return convert.loads(value)
    except (ValueError, TypeError):
        raise GraphQLFieldError(f"{what} is not JSON: {str(value)[:80]}") from None


def _cursor(offset: int) -> str:
    return node_id("Cursor", str(offset))


def _offset(cursor: Any) -> int:
    from runyard.compat.wandb.ids import parse_node_id

    parts = parse_node_id(cursor if isinstance(cursor, str) else None, "Cursor")
    try:
        return max(0, int(parts[0])) if parts else 0
    except ValueError:
        return 0


def _limit(value: Any, default: int = 50) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return max(1, min(value, MAX_PAGE))
    return default


# -- project: runs ------------------------------------------------------------------------------


def _runs_field(ctx: Context, entity: str, project: str) -> Field:
    def resolve(args: dict[str, Any]) -> dict[str, Any]:
        spec = translate_filter(_parse_json(args.get("filters"), "filters") or {})
        offset = _offset(args.get("after"))
        limit = _limit(args.get("first"))
        try:
            page, total = ctx.store.query_runs(
                entity, project, spec, translate_order(args.get("order")), limit, offset
            )
        except QueryError as exc:
            raise GraphQLFieldError(f"runyard cannot apply this run filter: {exc}") from None
        edges = [
            {"node": run_node(ctx, run), "cursor": _cursor(offset + i + 1)}
            for i, run in enumerate(page)
        ]
        return {
            "edges": edges,
            "totalCount": total,
            "pageInfo": {
                "endCursor": _cursor(offset + len(page)),
                "hasNextPage": offset + len(page) < total,
            },
        }

    return Field(resolve)


def _run_count_field(ctx: Context, entity: str, project: str) -> Field:
    def resolve(args: dict[str, Any]) -> int:
        spec = translate_filter(_parse_json(args.get("filters"), "filters") or {})
        try:
            _page, total = ctx.store.query_runs(entity, project, spec, None, 1, 0)
        except QueryError as exc:
            raise GraphQLFieldError(f"runyard cannot apply this run filter: {exc}") from None
        return total

    return Field(resolve)


PROJECT_FIELDS["runs"] = _runs_field
PROJECT_FIELDS["buckets"] = _runs_field
PROJECT_FIELDS["runCount"] = _run_count_field
PROJECT_FIELDS["internalId"] = lambda ctx, entity, project: Field(lambda _a: 1)


# -- run: history -------------------------------------------------------------------------------


def _sample(rows: list[dict[str, Any]], samples: int) -> list[dict[str, Any]]:
    if samples <= 0 or len(rows) <= samples:
        return rows
    if samples == 1:
        return [rows[-1]]
    last = len(rows) - 1
    picks = sorted({round(i * last / (samples - 1)) for i in range(samples)})
    return [rows[i] for i in picks]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _history_field(ctx: Context, run: RunRecord) -> Field:
    def resolve(args: dict[str, Any]) -> list[str]:
        min_step = _int(args.get("minStep"))
        max_step = _int(args.get("maxStep"))  # exclusive, as W&B's
        rows = ctx.store.history(run.pk, None, min_step, None if max_step is None else max_step - 1)
        samples = _int(args.get("samples")) or 500
        return [convert.dumps_wandb(r) for r in _sample(rows, min(samples, MAX_HISTORY))]

    return Field(resolve)


def _sampled_history_field(ctx: Context, run: RunRecord) -> Field:
    def one(spec: Any) -> list[dict[str, Any]]:
        spec = _parse_json(spec, "a sampledHistory spec") or {}
        keys = [k for k in spec.get("keys") or [] if isinstance(k, str)]
        wanted = [k for k in keys if k not in ("_step", "_runtime", "_timestamp")]
        min_step = _int(spec.get("minStep"))
        max_step = _int(spec.get("maxStep"))  # inclusive here (wandb-core sends max - 1)
        rows = ctx.store.history(run.pk, wanted or None, min_step, max_step)
        out = []
        for row in rows:
            if wanted and not all(k in row for k in wanted):
                continue  # W&B's sampledHistory returns the rows that have every key
            out.append({k: row[k] for k in keys if k in row} if keys else row)
        samples = _int(spec.get("samples")) or 500
        return [convert.loads(convert.dumps_wandb(r)) for r in _sample(out, samples)]

    def resolve(args: dict[str, Any]) -> list[list[dict[str, Any]]]:
        specs = args.get("specs")
        if not isinstance(specs, list):
            specs = [specs]
        return [one(s) for s in specs]

    return Field(resolve)


def _history_keys(ctx: Context, run: RunRecord) -> Field:
    def resolve(_args: dict[str, Any]) -> dict[str, Any]:
        keys = {
            name: {"typeCounts": [{"type": "number", "count": 1}]}
            for name in ctx.store.metric_names(run.pk)
        }
        return {"keys": keys, "lastStep": run.last_step}

    return Field(resolve)


RUN_FIELDS["history"] = _history_field
RUN_FIELDS["sampledHistory"] = _sampled_history_field
RUN_FIELDS["historyKeys"] = _history_keys
RUN_FIELDS["parquetHistory"] = lambda ctx, run: Field(
    lambda _a: {"parquetUrls": [], "liveData": []}
)


def _events(ctx: Context, run: RunRecord) -> Field:
    def resolve(args: dict[str, Any]) -> list[str]:
        samples = _int(args.get("samples")) or 500
        rows = ctx.store.system_metrics(run.pk, min(samples, MAX_HISTORY)).rows
        return [convert.dumps_wandb(r) for r in rows]

    return Field(resolve)


def _system_metrics(ctx: Context, run: RunRecord) -> Field:
    def resolve(_args: dict[str, Any]) -> str:
        rows = ctx.store.system_metrics(run.pk, 1).rows  # the last sample (first and last kept)
        return convert.dumps_wandb(rows[-1] if rows else {})

    return Field(resolve)


RUN_FIELDS["events"] = _events
RUN_FIELDS["systemMetrics"] = _system_metrics
RUN_FIELDS["projectId"] = lambda ctx, run: Field(lambda _a: 1)
RUN_FIELDS["commit"] = lambda ctx, run: Field(
    lambda _a: (
        (run.meta.get("git") or {}).get("commit") if isinstance(run.meta.get("git"), dict) else None
    )
)


# -- run: files and console -------------------------------------------------------------------


def _files_field(ctx: Context, run: RunRecord) -> Field:
    def resolve(args: dict[str, Any]) -> dict[str, Any]:
        files = ctx.store.list_files(run.entity, run.project, run.run_id)
        names = [n for n in args.get("names") or [] if isinstance(n, str)]
        pattern = args.get("pattern")
        if names:
            files = [f for f in files if f.name in set(names)]
        elif isinstance(pattern, str) and pattern:
            glob = pattern.replace("%", "*").replace("_", "?")  # SQL LIKE, as W&B's
            files = [f for f in files if fnmatch.fnmatchcase(f.name, glob)]
        offset = _offset(args.get("after"))
        limit = _limit(args.get("first"))
        page = files[offset : offset + limit]
        auth = ctx.state.auth_store if ctx.state.settings.auth else None
        edges = []
        for i, f in enumerate(page):
            url = signed_url(
                ctx.base_url,
                run_file_path(run.entity, run.project, run.run_id, f.name),
                "GET",
                auth,
                ctx.who,
            )
            edges.append(
                {
                    "node": {
                        "id": node_id("File", run.entity, run.project, run.run_id, f.name),
                        "name": f.name,
                        "url": url,
                        "directUrl": url,
                        "sizeBytes": f.size,
                        "mimetype": None,
                        "updatedAt": iso(f.updated_at),
                        "md5": None,
                    },
                    "cursor": _cursor(offset + i + 1),
                }
            )
        return {
            "edges": edges,
            "pageInfo": {
                "endCursor": _cursor(offset + len(page)),
                "hasNextPage": offset + len(page) < len(files),
            },
        }

    return Field(resolve)


def _file_count(ctx: Context, run: RunRecord) -> Field:
    return Field(lambda _a: len(ctx.store.list_files(run.entity, run.project, run.run_id)))


def _log_lines(ctx: Context, run: RunRecord) -> Field:
    def resolve(args: dict[str, Any]) -> dict[str, Any]:
        last = _int(args.get("last"))
        lines = ctx.store.console(run.pk, last)
        numbered = list(enumerate(lines))
        if last is None:
            offset = _offset(args.get("after"))
            limit = _limit(args.get("first"), default=MAX_PAGE)
            numbered = numbered[offset : offset + limit]
        edges = [
            {
                "node": {
                    "number": n,
                    "timestamp": iso(ts),
                    "level": "error" if stream == "stderr" else "info",
                    "label": None,
                    "line": text,
                },
                "cursor": _cursor(n + 1),
            }
            for n, (stream, ts, text) in numbered
        ]
        end = numbered[-1][0] + 1 if numbered else 0
        return {
            "edges": edges,
            "pageInfo": {"endCursor": _cursor(end), "hasNextPage": end < len(lines)},
        }

    return Field(resolve)


def _log_line_count(ctx: Context, run: RunRecord) -> Field:
    return Field(lambda _a: len(ctx.store.console(run.pk)))


RUN_FIELDS["files"] = _files_field
RUN_FIELDS["fileCount"] = _file_count
RUN_FIELDS["logLines"] = _log_lines
RUN_FIELDS["logLineCount"] = _log_line_count
