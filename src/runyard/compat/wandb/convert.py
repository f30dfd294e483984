"""Pure conversions between W&B's wire forms and runyard's stored forms.

Nothing here touches a store. What the wandb client sends becomes what runyard's own SDK would
have stored for the same user code (``import runyard as wandb``), so a run looks the same
whichever client wrote it:

* config: W&B sends ``{"key": {"value": v, "desc": ...}, "_wandb": {"value": {...}}}``; runyard
  stores ``{"key": v}`` and keeps the client's ``_wandb`` block (telemetry, metric definitions,
  environment) out of the config, in the run's ``meta["wandb"]``;
* history rows and summary: nested dicts become ``a/b`` keys (runyard's nesting; W&B's UI shows
  them as ``a.b``); media references (``{"_type": "image-file", ...}``) and lists are kept as
  they are (runyard stores W&B's media format, docs/media.md); ``_step``/``_runtime``/
  ``_timestamp`` keep their meaning; the summary's ``_wandb`` block is dropped (its
  ``runtime`` is the run's runtime);
* system metrics: a ``wandb-events.jsonl`` line is a runyard ``stats`` sample (W&B's names are
  runyard's, docs/system.md);
* console: ``[ERROR ]<UTC time> <text>`` lines (and the JSON form) become
  ``(stream, timestamp, text)``.

A value runyard cannot store (a key longer than :data:`runyard.limits.MAX_KEY_LENGTH`, a NUL
character, an integer step out of range) is dropped and reported in :class:`Dropped`, never
raised: the wandb client gives up its whole upload on a rejected request, so refusing one value
would lose everything after it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from runyard._json import float_marker, sanitize
from runyard._time import as_datetime
from runyard.limits import MAX_DEPTH, MAX_KEY_LENGTH, MAX_KEYS_PER_ROW, MAX_STRING_BYTES

INT64 = 2**63 - 1
#: W&B's summary aggregates (``define_metric(summary=...)``): a dict of only these is one value.
SUMMARY_AGGREGATES = frozenset({"min", "max", "mean", "last", "best", "first", "copy"})
_RESERVED = ("_step", "_runtime", "_timestamp")


@dataclass
class Dropped:
    """What a conversion left out, for the server's log (``key: why``)."""

    items: list[str] = field(default_factory=list)

    def add(self, key: str, why: str) -> None:
        if len(self.items) < 50:
            self.items.append(f"{key[:80]}: {why}")

    def __bool__(self) -> bool:
        return bool(self.items)


def loads(text: str | bytes) -> Any:
    """JSON as the wandb client writes it (``NaN``/``Infinity`` tokens included)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # accepts NaN, Infinity, -Infinity


# -- values -----------------------------------------------------------------------------------


def _clean_text(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if len(text) > MAX_STRING_BYTES // 4 and len(text.encode()) > MAX_STRING_BYTES:
        text = text.encode()[:MAX_STRING_BYTES].decode(errors="ignore")
    return text


def clean_doc(value: Any, depth: int = 0) -> Any:
    """A JSON document (config value, meta) with NUL characters replaced and depth bounded."""
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            return None
        return {_clean_text(str(k)): clean_doc(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            return None
        return [clean_doc(v, depth + 1) for v in value]
    return value


def row_value(value: Any) -> tuple[bool, Any]:
    """``(ok, journal form)`` of one history value: numbers (non-finite as markers), strings,
    booleans, null, and lists (stored as JSON values, as runyard's SDK stores them)."""
    tp = type(value)
    if tp is float:
        return True, value if math.isfinite(value) else float_marker(value)
    if tp is int:
        return (True, value) if -INT64 <= value <= INT64 else (True, float(value))
    if tp is bool or value is None:
        return True, value
    if tp is str:
        return True, _clean_text(value)
    if tp is list:
        return True, sanitize(clean_doc(value))
    return False, value


def _is_aggregate(value: Mapping[str, Any]) -> bool:
    return bool(value) and all(k in SUMMARY_AGGREGATES for k in value)


def flatten(
    data: Mapping[str, Any],
    out: dict[str, Any],
    dropped: Dropped,
    prefix: str = "",
    *,
    summary: bool = False,
    depth: int = 0,
) -> None:
    """Flatten a row or summary into ``out`` (``a/b`` keys, journal-form values)."""
    for raw_key, value in data.items():
        key = prefix + str(raw_key)
        if type(value) is dict:
            if "_type" in value:
                # A media reference (image-file, table-file, histogram...): stored as it is,
                # W&B's format is runyard's (docs/media.md); its file comes as a run file.
                if len(key) > MAX_KEY_LENGTH or "\x00" in key:
                    dropped.add(key, f"a key is at most {MAX_KEY_LENGTH} characters, without NUL")
                    continue
                out[key] = sanitize(clean_doc(value))
                continue
            if summary and _is_aggregate(value):
                agg = {}
                for k, v in value.items():
                    ok, v = row_value(v)
                    if ok:
                        agg[k] = v
                out[key] = agg
                continue
            if depth >= MAX_DEPTH:
                dropped.add(key, f"nested deeper than {MAX_DEPTH} levels")
                continue
            flatten(value, out, dropped, key + "/", summary=summary, depth=depth + 1)
            continue
        if len(key) > MAX_KEY_LENGTH or "\x00" in key:
            dropped.add(key, f"a key is at most {MAX_KEY_LENGTH} characters, without NUL")
            continue
        ok, converted = row_value(value)
        if not ok:
            dropped.add(key, f"a {type(value).__name__} is not a metric value")
            continue
        out[key] = converted


def history_row(line: str | bytes, dropped: Dropped) -> dict[str, Any] | None:
    """The journal ``row`` payload of one ``wandb-history.jsonl`` line (None if unusable)."""
    try:
        data = loads(line)
    except ValueError:
        dropped.add("history line", "not JSON")
        return None
    if type(data) is not dict:
        dropped.add("history line", "not a JSON object")
        return None
    step = data.get("_step")
    if type(step) is float and step.is_integer():
        step = int(step)
    if type(step) is not int or not -INT64 <= step <= INT64:
        dropped.add("history line", f"_step {step!r} is not a 64-bit integer")
        return None
    row: dict[str, Any] = {"_step": step}
    for key in ("_runtime", "_timestamp"):
        value = data.get(key)
        if (type(value) is float and math.isfinite(value)) or type(value) is int:
            row[key] = value
    for key in _RESERVED:
        data.pop(key, None)
    data.pop("_wandb", None)
    flatten(data, row, dropped)
    if len(row) > MAX_KEYS_PER_ROW + 3:
        dropped.add("history line", f"more than {MAX_KEYS_PER_ROW} keys")
        return None
    return row


def stats_sample(line: str | bytes, dropped: Dropped) -> dict[str, Any] | None:
    """The journal ``stats`` payload of one ``wandb-events.jsonl`` line (None if unusable)."""
    try:
        data = loads(line)
    except ValueError:
        dropped.add("events line", "not JSON")
        return None
    if type(data) is not dict:
        return None
    stamp = data.get("_timestamp")
    if not ((type(stamp) is float and math.isfinite(stamp)) or type(stamp) is int):
        dropped.add("events line", "no _timestamp")
        return None
    sample: dict[str, Any] = {"_timestamp": stamp}
    runtime = data.get("_runtime")
    if (type(runtime) is float and math.isfinite(runtime)) or type(runtime) is int:
        sample["_runtime"] = runtime
    for key, value in data.items():
        if key[:1] == "_" or len(key) > MAX_KEY_LENGTH or "\x00" in key:
            continue
        tp = type(value)
        if tp is int or tp is bool:
            sample[key] = value
        elif tp is float:
            sample[key] = value if math.isfinite(value) else float_marker(value)
        if len(sample) > MAX_KEYS_PER_ROW:
            break
    return sample


def summary_doc(data: Any, dropped: Dropped) -> tuple[dict[str, Any], float | None]:
    """``(summary, runtime)`` from a ``wandb-summary.json`` document."""
    if type(data) is not dict:
        return {}, None
    runtime = None
    internal = data.pop("_wandb", None)
    if isinstance(internal, dict) and isinstance(internal.get("runtime"), int | float):
        runtime = float(internal["runtime"])
    out: dict[str, Any] = {}
    flatten(data, out, dropped, summary=True)
    if runtime is None and isinstance(out.get("_runtime"), int | float):
        runtime = float(out["_runtime"])
    return out, runtime


def unflatten_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary as W&B clients read it back (``a/b`` keys stay: they are W&B keys too)."""
    return dict(summary)


# -- config -----------------------------------------------------------------------------------


def config_from_wandb(text: str | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``(config, internal)`` from UpsertBucket's ``config`` JSON string (None: unchanged)."""
    if text is None:
        return None, None
    try:
        data = loads(text) if isinstance(text, str | bytes) else text
    except ValueError:
        return None, None
    if type(data) is not dict:
        return None, None
    config: dict[str, Any] = {}
    internal: dict[str, Any] | None = None
    for key, item in data.items():
        value = item.get("value") if type(item) is dict and "value" in item else item
        if key == "_wandb":
            internal = value if type(value) is dict else None
            continue
        config[str(key)] = clean_doc(value)
    return config, internal


def config_to_wandb(config: Mapping[str, Any], internal: Mapping[str, Any] | None = None) -> str:
    """The ``{"key": {"value": v, "desc": null}}`` JSON string W&B clients read."""
    doc: dict[str, Any] = {k: {"desc": None, "value": v} for k, v in config.items()}
    doc["_wandb"] = {"desc": None, "value": dict(internal or {})}
    return dumps_wandb(doc)


def dumps_wandb(value: Any) -> str:
    """JSON text for a W&B client (non-finite floats as ``NaN``/``Infinity``, as W&B writes)."""
    from runyard._json import restore

    return json.dumps(restore(value), separators=(",", ":"), default=str)


# -- metadata -----------------------------------------------------------------------------------


def meta_from_wandb_metadata(data: Any) -> dict[str, Any]:
    """runyard's run ``meta`` keys from ``wandb-metadata.json`` (or a ``_wandb.e`` entry)."""
    if type(data) is not dict:
        return {}
    meta: dict[str, Any] = {}
    for ours, theirs in (
        ("host", "host"),
        ("os", "os"),
        ("executable", "executable"),
        ("program", "program"),
        ("cwd", "root"),
        ("user", "username"),
    ):
        value = data.get(theirs)
        if isinstance(value, str) and value:
            meta[ours] = _clean_text(value)
    python = data.get("python")
    if isinstance(python, str) and python:
        meta["python"] = python.split()[-1]  # "CPython 3.11.7" -> "3.11.7"
    args = data.get("args")
    if isinstance(args, list):
        meta["args"] = [_clean_text(str(a)) for a in args]
    git = data.get("git")
    if isinstance(git, dict):
        meta["git"] = {
            "commit": git.get("commit"),
            "remote": git.get("remote"),
        }
    return meta


# -- console --------------------------------------------------------------------------------------


def _parse_time(text: str) -> float | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def console_line(line: str, default_time: float) -> tuple[str, float, str]:
    """``(stream, timestamp, text)`` of one ``output.log`` line of the file stream."""
    if line.startswith('{"'):
        try:
            doc = loads(line)
        except ValueError:
            doc = None
        if type(doc) is dict and "content" in doc:
            stream = "stderr" if doc.get("level") == "error" else "stdout"
            ts = _parse_time(str(doc.get("ts", ""))) or default_time
            text = str(doc.get("content", ""))
            label = doc.get("label")
            if label:
                text = f"[{label}] {text}"
            return stream, ts, _clean_text(text)
    stream = "stdout"
    rest = line
    if rest.startswith("ERROR "):
        stream, rest = "stderr", rest[6:]
    stamp, sep, text = rest.partition(" ")
    parsed = _parse_time(stamp) if sep and len(stamp) >= 19 and stamp[4:5] == "-" else None
    if parsed is None:
        return stream, default_time, _clean_text(rest)
    return stream, parsed, _clean_text(text)


def console_text(stream: str, ts: float, text: str) -> str:
    """A stored console line in W&B's ``output.log`` form."""
    when = as_datetime(ts, UTC) or datetime.fromtimestamp(0, UTC)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{'ERROR ' if stream == 'stderr' else ''}{stamp} {text}"


# -- metric definitions ---------------------------------------------------------------------------

#: MetricSummary's fields (wandb_internal.proto) by number
_SUMMARY_FIELDS = {
    "1": "min",
    "2": "max",
    "3": "mean",
    "4": "best",
    "5": "last",
    "6": "none",
    "8": "first",
}


def _flags(value: Any) -> set[str]:
    """The set boolean fields of an encoded message: ``[1, 3]`` (numbers, how wandb-core
    writes an all-bool message) or ``{"1": true}``."""
    if isinstance(value, list):
        return {str(v) for v in value}
    if isinstance(value, dict):
        return {str(k) for k, v in value.items() if v}
    return set()


def metric_defs_from_wandb(encoded: Any) -> list[dict[str, Any]] | None:
    """runyard's metric definitions (``define_metric``) from the ``m`` list the client keeps in
    its config's ``_wandb`` block (MetricRecords by proto field number; a step metric is a
    one-based index into the list)."""
    if not isinstance(encoded, list):
        return None
    names = [(m.get("1") or m.get("2")) if isinstance(m, dict) else None for m in encoded]
    out: list[dict[str, Any]] = []
    for m, name in zip(encoded, names, strict=True):
        if not isinstance(m, dict) or not isinstance(name, str) or not name:
            continue
        step = None
        index = m.get("5")
        if isinstance(index, int) and 1 <= index <= len(names):
            step = names[index - 1]
        elif isinstance(m.get("4"), str) and m["4"]:
            step = m["4"]
        summary = _flags(m.get("7"))
        aggs = [agg for number, agg in _SUMMARY_FIELDS.items() if number in summary]
        goal = {1: "minimize", 2: "maximize"}.get(m.get("8"))  # type: ignore[arg-type]
        if "best" in aggs and goal is None:
            aggs.remove("best")
        options = _flags(m.get("6"))
        out.append(
            {
                "name": name,
                "step_metric": step,
                "summary": aggs,
                "goal": goal,
                "hidden": "2" in options,
            }
        )
    return out
