"""A journal batch from a request body: parsed with orjson and checked by hand.

This is the hot path (the SDK ships up to 2000 records of 10+ metrics per batch), so no model
is built per record: one pass over the records checks exactly what the store relies on, and
every problem is a 422 naming the record (``seq``), the field and what is expected. Values the
database cannot hold (over-long names, NUL characters, integers past 64 bits, non-finite
timestamps) are refused here rather than failing in SQL.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from runyard._json import FLOAT_MARKER
from runyard.limits import (
    ALERT_LEVELS,
    MAX_ALERT_TEXT_LENGTH,
    MAX_ALERT_TITLE_LENGTH,
    MAX_DEPTH,
    MAX_KEY_LENGTH,
    MAX_KEYS_PER_ROW,
    MAX_STRING_BYTES,
    MAX_TIMESTAMP,
    too_deep,
)
from runyard.server.errors import ApiError
from runyard.store.base import JournalBatch

RUN_STATES = (
    "pending",
    "running",
    "preempting",
    "finished",
    "failed",
    "crashed",
    "killed",
    "stopped",
    "preempted",
)
RECORD_KINDS = (
    "run",
    "config",
    "row",
    "summary",
    "define",
    "console",
    "meta",
    "finish",
    "tags",
    "attrs",
    "preempt",
    "quarantined",
    "stats",
    "alert",
    "media",
)
INT64 = 2**63 - 1
PENDING = "__m__"  # runyard.media's mark of a reference not resolved yet
#: The SDK's run id rule (sdk/names.py): what `init(id=...)` accepts.
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
INT32 = 2**31 - 1
_MARKER_NAMES = ("nan", "inf", "-inf")
#: A string of at most this many characters is below MAX_STRING_BYTES whatever it holds.
_SHORT_STRING = MAX_STRING_BYTES // 4

#: The JSON schema published in the OpenAPI document for the batch body.
BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["header", "records"],
    "properties": {
        "header": {
            "type": "object",
            "description": "The journal's `run` record: creates or resumes the run.",
            "required": ["entity", "project", "run_id"],
            "properties": {
                "entity": {"type": "string", "minLength": 1, "maxLength": 128},
                "project": {"type": "string", "minLength": 1, "maxLength": 128},
                "run_id": {"type": "string", "pattern": _RUN_ID.pattern},
                "name": {"type": ["string", "null"], "maxLength": 256},
                "group": {"type": ["string", "null"], "maxLength": 256},
                "job_type": {"type": ["string", "null"], "maxLength": 128},
                "tags": {"type": ["array", "null"], "items": {"type": "string"}},
                "notes": {"type": ["string", "null"]},
                "config": {
                    "type": ["object", "null"],
                    "description": f"At most {MAX_DEPTH} levels of objects and arrays.",
                },
                "meta": {"type": ["object", "null"]},
                "resume": {"type": "boolean"},
                "attach": {"type": "boolean"},
                "join_sweep": {"type": "boolean"},
                "sweep_id": {"type": ["string", "null"], "maxLength": 64},
                "start_time": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_TIMESTAMP},
                "host": {"type": ["string", "null"], "maxLength": 256},
                "pid": {"type": ["integer", "null"], "minimum": 0, "maximum": INT32},
            },
        },
        "records": {
            "type": "array",
            "description": "`[seq, kind, payload]` in increasing `seq`.",
            "items": {
                "type": "array",
                "minItems": 3,
                "maxItems": 3,
                "prefixItems": [
                    {"type": "integer", "minimum": 1},
                    {"type": "string", "enum": list(RECORD_KINDS)},
                    {},
                ],
            },
        },
        "summary": {"type": ["object", "null"]},
        "metric_defs": {"type": ["array", "null"], "items": {"type": "object"}},
        "heartbeat_at": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_TIMESTAMP},
    },
}


def _bad(message: str) -> ApiError:
    return ApiError(422, message, "invalid")


def _is_number(value: Any) -> bool:
    return (type(value) is float and math.isfinite(value)) or type(value) is int


def _check_time(value: Any, where: str, *, duration: bool = False) -> None:
    """A timestamp (seconds since the epoch, 0 to 9999-01-01) or, ``duration``, a runtime of at
    most that many seconds: a reader formatting it as a date must never overflow."""
    if value is None:
        return
    if not _is_number(value):
        raise _bad(f"{where} must be a finite number")
    low = -MAX_TIMESTAMP if duration else 0.0
    if not low <= value <= MAX_TIMESTAMP:
        what = "a runtime in seconds" if duration else "seconds since the epoch"
        raise _bad(
            f"{where} is {value!r}, out of range: {what} between {low:g} and {MAX_TIMESTAMP:g} "
            f"(runyard.limits.MAX_TIMESTAMP, year 9999)"
        )


def _check_depth(value: Any, where: str) -> None:
    path = too_deep(value, MAX_DEPTH)
    if path is not None:
        raise _bad(
            f"{where} is nested more than {MAX_DEPTH} levels deep (at {path!r}); runyard keeps "
            f"at most {MAX_DEPTH} levels of dicts and lists (runyard.limits.MAX_DEPTH): flatten "
            f"it or save it as a file"
        )


def _text(doc: dict[str, Any], key: str, where: str, max_len: int | None, required: bool) -> None:
    value = doc.get(key)
    if value is None:
        if required:
            raise _bad(f"{where}.{key} is required (a non-empty string)")
        return
    if type(value) is not str:
        raise _bad(f"{where}.{key} must be a string, not {type(value).__name__}")
    if required and not value:
        raise _bad(f"{where}.{key} must not be empty")
    if max_len is not None and len(value) > max_len:
        raise _bad(f"{where}.{key} is longer than {max_len} characters")
    if "\x00" in value:
        raise _bad(f"{where}.{key} contains a NUL character")


def _path_part(doc: dict[str, Any], key: str, max_len: int) -> None:
    _text(doc, key, "header", max_len, required=True)
    value = doc[key]
    if "/" in value or value in (".", ".."):
        raise _bad(f"header.{key} {value!r} must not contain '/' or be '.' or '..'")


def _check_header(header: Any) -> dict[str, Any]:
    if type(header) is not dict:
        raise _bad("header must be an object: the journal's run record (entity, project, run_id)")
    _path_part(header, "entity", 128)
    _path_part(header, "project", 128)
    _path_part(header, "run_id", 64)
    if not _RUN_ID.match(header["run_id"]):
        raise _bad(
            f"header.run_id {header['run_id']!r} is not a run id: 1-64 letters, digits, '_', "
            f"'-' or '.', starting with a letter or digit"
        )
    for key, limit in (("name", 256), ("group", 256), ("job_type", 128), ("host", 256)):
        _text(header, key, "header", limit, required=False)
    _text(header, "sweep_id", "header", 64, required=False)
    _text(header, "notes", "header", None, required=False)
    tags = header.get("tags")
    if tags is not None and (
        type(tags) is not list or any(type(t) is not str or "\x00" in t for t in tags)
    ):
        raise _bad("header.tags must be a list of strings")
    for key in ("config", "meta", "initial_summary"):
        if header.get(key) is not None:
            if type(header[key]) is not dict:
                raise _bad(f"header.{key} must be an object")
            _check_depth(header[key], f"header.{key}")
    _check_time(header.get("start_time"), "header.start_time")
    pid = header.get("pid")
    if pid is not None and (type(pid) is not int or not 0 <= pid <= INT32):
        raise _bad(f"header.pid must be an integer between 0 and {INT32}")
    return header


def _check_value(seq: int, key: str, value: Any) -> None:
    tp = type(value)
    if tp is float or tp is int or tp is bool or value is None:
        return
    if tp is str:
        if "\x00" in value:
            raise _bad(f"record {seq}: the value of {key!r} contains a NUL character")
        if len(value) > _SHORT_STRING and len(value.encode()) > MAX_STRING_BYTES:
            raise _bad(
                f"record {seq}: the value of {key!r} is a string of more than "
                f"{MAX_STRING_BYTES} bytes (runyard.limits.MAX_STRING_BYTES); save long text as "
                f"a file"
            )
        return
    if tp is dict and len(value) == 1 and value.get(FLOAT_MARKER) in _MARKER_NAMES:
        return
    if tp is dict and PENDING in value:
        raise _bad(
            f"record {seq}: the value of {key!r} is an unresolved media reference; the client "
            f"must send media references with their files (path, sha256)"
        )
    if tp is dict or tp is list:  # lists and media references: JSON, bounded by the body size
        _check_depth(value, f"record {seq}: the value of {key!r}")
        return
    raise _bad(
        f"record {seq}: the value of {key!r} is a {tp.__name__}; history values are numbers, "
        f"booleans, strings, null, lists, objects (media references) or a non-finite marker "
        f'{{"{FLOAT_MARKER}": "nan"}}'
    )


def _check_row(seq: int, payload: Any) -> None:
    if type(payload) is not dict:
        raise _bad(f"record {seq}: a row is an object with _step and the logged values")
    step = payload.get("_step")
    if type(step) is not int or not 0 <= step <= INT64:
        raise _bad(f"record {seq}: row._step must be an integer from 0 to 2**63-1")
    _check_time(payload.get("_timestamp"), f"record {seq}: row._timestamp")
    _check_time(payload.get("_runtime"), f"record {seq}: row._runtime", duration=True)
    if len(payload) > MAX_KEYS_PER_ROW:
        values = len(payload) - sum(k in payload for k in ("_step", "_runtime", "_timestamp"))
        if values > MAX_KEYS_PER_ROW:
            raise _bad(
                f"record {seq}: a row of {values} values, more than the {MAX_KEYS_PER_ROW} "
                f"a row may hold (runyard.limits.MAX_KEYS_PER_ROW)"
            )
    for key, value in payload.items():
        if key[:1] == "_":
            continue
        if not key:
            raise _bad(f"record {seq}: a metric with an empty name")
        if len(key) > MAX_KEY_LENGTH or "\x00" in key:
            raise _bad(
                f"record {seq}: metric name {key[:40]!r}... is longer than {MAX_KEY_LENGTH} "
                f"characters or has a NUL"
            )
        _check_value(seq, key, value)


def _check_console(seq: int, payload: Any) -> None:
    if type(payload) is not list:
        raise _bad(f"record {seq}: console is a list of [stream, timestamp, text]")
    for line in payload:
        if (
            type(line) is not list
            or len(line) != 3
            or type(line[0]) is not str
            or len(line[0]) > 8
            or not _is_number(line[1])
            or not 0 <= line[1] <= MAX_TIMESTAMP
            or type(line[2]) is not str
            or "\x00" in line[0]
            or "\x00" in line[2]
        ):
            raise _bad(f"record {seq}: a console line is [stream (stdout|stderr), timestamp, text]")


def _check_finish(seq: int, payload: Any) -> None:
    if type(payload) is not dict:
        raise _bad(f"record {seq}: finish is an object with state, exit_code, failure")
    if payload.get("state") not in RUN_STATES:
        raise _bad(f"record {seq}: finish.state must be one of {', '.join(RUN_STATES)}")
    code = payload.get("exit_code")
    if code is not None and (type(code) is not int or not -INT32 <= code <= INT32):
        raise _bad(f"record {seq}: finish.exit_code must be a 32-bit integer or null")
    failure = payload.get("failure")
    if failure is not None and (type(failure) is not str or "\x00" in failure):
        raise _bad(f"record {seq}: finish.failure must be a string or null")
    _check_time(payload.get("time"), f"record {seq}: finish.time")
    _check_time(payload.get("runtime"), f"record {seq}: finish.runtime", duration=True)


def _check_stamps(seq: int, kind: str, payload: dict[str, Any]) -> None:
    if not _is_number(payload.get("_timestamp")):
        raise _bad(f"record {seq}: {kind}._timestamp must be a finite number (seconds since epoch)")
    _check_time(payload["_timestamp"], f"record {seq}: {kind}._timestamp")
    _check_time(payload.get("_runtime"), f"record {seq}: {kind}._runtime", duration=True)


def _check_stats(seq: int, payload: Any) -> None:
    """A system-metrics sample: ``{"_timestamp", "_runtime", "system.<name>": number, ...}``."""
    if type(payload) is not dict:
        raise _bad(f"record {seq}: stats is an object of _timestamp, _runtime and metrics")
    _check_stamps(seq, "stats", payload)
    if len(payload) > MAX_KEYS_PER_ROW:
        raise _bad(f"record {seq}: stats has {len(payload)} keys, more than {MAX_KEYS_PER_ROW}")
    for key, value in payload.items():
        if key[:1] == "_":
            continue
        if len(key) > MAX_KEY_LENGTH or "\x00" in key:
            raise _bad(f"record {seq}: stats key {key[:40]!r}... is too long or has a NUL")
        tp = type(value)
        if tp is float or tp is int or tp is bool or value is None:
            continue
        if tp is dict and len(value) == 1 and value.get(FLOAT_MARKER) in _MARKER_NAMES:
            continue
        raise _bad(f"record {seq}: stats value of {key!r} is a {tp.__name__}; it must be a number")


def _check_alert(seq: int, payload: Any) -> None:
    """An alert: ``{"title", "text", "level", "wait_duration", "_timestamp", "_runtime"}``."""
    if type(payload) is not dict:
        raise _bad(f"record {seq}: alert is an object with title, text, level, wait_duration")
    _check_stamps(seq, "alert", payload)
    title = payload.get("title")
    if type(title) is not str or not title or len(title) > MAX_ALERT_TITLE_LENGTH:
        raise _bad(
            f"record {seq}: alert.title must be a string of 1 to {MAX_ALERT_TITLE_LENGTH} "
            f"characters"
        )
    text = payload.get("text")
    if type(text) is not str or len(text) > MAX_ALERT_TEXT_LENGTH:
        raise _bad(
            f"record {seq}: alert.text must be a string of at most {MAX_ALERT_TEXT_LENGTH} "
            f"characters"
        )
    if "\x00" in title or "\x00" in text:
        raise _bad(f"record {seq}: alert.title and alert.text must not contain NUL characters")
    if payload.get("level") not in ALERT_LEVELS:
        raise _bad(f"record {seq}: alert.level must be one of {', '.join(ALERT_LEVELS)}")
    wait: Any = payload.get("wait_duration")
    if not _is_number(wait) or wait < 0:
        raise _bad(f"record {seq}: alert.wait_duration must be a number of seconds >= 0")


#: an "attrs" record's fields and their length limits (None: no limit; the header's limits)
_ATTR_LIMITS: dict[str, int | None] = {"name": 256, "notes": None, "group": 256, "job_type": 128}


def _check_attrs(seq: int, payload: Any) -> None:
    """run.name/notes/tags/group/job_type set after init()."""
    if type(payload) is not dict or not payload:
        raise _bad(f"record {seq}: attrs is an object of name, notes, tags, group, job_type")
    for field, value in payload.items():
        if field == "tags":
            if type(value) is not list or any(type(t) is not str or "\x00" in t for t in value):
                raise _bad(f"record {seq}: attrs.tags must be a list of strings without NUL")
            continue
        if field not in _ATTR_LIMITS:
            raise _bad(
                f"record {seq}: attrs.{field} is not a run field; fields are "
                f"name, notes, tags, group, job_type"
            )
        limit = _ATTR_LIMITS[field]
        if value is None and field != "name":
            continue
        if type(value) is not str or "\x00" in value or (limit and len(value) > limit):
            raise _bad(
                f"record {seq}: attrs.{field} must be a string without NUL"
                + (f" of at most {limit} characters" if limit else "")
            )


def _check_record(record: Any, previous: int) -> tuple[int, str, Any]:
    if type(record) is not list or len(record) != 3:
        raise _bad(f"each record is [seq, kind, payload]; got {str(record)[:80]}")
    seq, kind, payload = record
    if type(seq) is not int or not 1 <= seq <= INT64:
        raise _bad(f"record seq must be a positive 64-bit integer, got {seq!r}")
    if seq <= previous:
        raise _bad(f"records must be in increasing seq order: {seq} after {previous}")
    if kind == "row":
        _check_row(seq, payload)
    elif kind == "console":
        _check_console(seq, payload)
    elif kind == "finish":
        _check_finish(seq, payload)
    elif kind == "stats":
        _check_stats(seq, payload)
    elif kind == "alert":
        _check_alert(seq, payload)
    elif kind in ("config", "meta", "define"):
        if type(payload) is not dict:
            raise _bad(f"record {seq}: {kind} must be an object")
        _check_depth(payload, f"record {seq}: {kind}")
    elif kind == "summary":
        if type(payload) is not dict:
            raise _bad(f"record {seq}: summary is an object with set and del")
        if payload.get("set") is not None:
            _check_depth(payload["set"], f"record {seq}: summary.set")
    elif kind == "quarantined":
        if (
            type(payload) is not dict
            or type(payload.get("kind")) is not str
            or type(payload.get("reason")) is not str
            or "\x00" in payload["kind"] + payload["reason"]
        ):
            raise _bad(f"record {seq}: quarantined is an object with kind and reason (strings)")
    elif kind == "tags":
        if type(payload) is not list or any(type(t) is not str or "\x00" in t for t in payload):
            raise _bad(f"record {seq}: tags must be a list of strings without NUL characters")
    elif kind == "attrs":
        _check_attrs(seq, payload)
    elif kind == "preempt":
        if type(payload) is not dict:
            raise _bad(f"record {seq}: preempt is an object (mark_preempting's time)")
        _check_time(payload.get("time"), f"record {seq}: preempt.time")
    elif kind not in RECORD_KINDS:
        raise _bad(f"record {seq}: unknown kind {kind!r}; kinds are {', '.join(RECORD_KINDS)}")
    return seq, kind, payload


def parse_batch(journal_id: str, body: bytes) -> JournalBatch:
    """The batch in ``body``, or an :class:`ApiError` 422 saying what is wrong."""
    if not body:
        raise _bad("empty body: send the batch as a JSON object")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"the body is not valid JSON: {exc}") from None
    if type(doc) is not dict:
        raise _bad("the body must be a JSON object {header, records, summary, ...}")
    header = _check_header(doc.get("header"))
    raw_records = doc.get("records")
    if type(raw_records) is not list:
        raise _bad("records must be a list of [seq, kind, payload]")
    records = []
    previous = 0
    for raw in raw_records:
        record = _check_record(raw, previous)
        previous = record[0]
        records.append(record)
    summary = doc.get("summary")
    if summary is not None and type(summary) is not dict:
        raise _bad("summary must be an object or null")
    _check_depth(summary, "summary")
    defs = doc.get("metric_defs")
    if defs is not None and (type(defs) is not list or any(type(d) is not dict for d in defs)):
        raise _bad("metric_defs must be a list of objects or null")
    _check_depth(defs, "metric_defs")
    heartbeat = doc.get("heartbeat_at")
    _check_time(heartbeat, "heartbeat_at")
    return JournalBatch(
        journal_id=journal_id,
        header=header,
        records=records,
        summary=summary,
        metric_defs=defs,
        heartbeat_at=None if heartbeat is None else float(heartbeat),
    )
