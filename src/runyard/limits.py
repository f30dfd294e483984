"""The limits of what runyard accepts, in one place (the SDK, the store and the server use them).

Each limit is enforced at the edge where a user's input enters: ``log()``/``init()`` in the SDK
(a named ``ValueError``/``TypeError`` before anything reaches the journal) and the server's
request parsing (a 4xx naming the field). The store never sees a value past them, so a record
that reached the journal can always be applied. docs/store.md lists them for users.
"""

from __future__ import annotations

#: Characters in a metric (history/summary) key after flattening (``a/b/c``); the store's
#: ``metric_keys.name`` column holds this many.
MAX_KEY_LENGTH = 512

#: Keys in one logged row. W&B advises staying below 10k metrics per run; a row of 1e6 keys
#: costs the server gigabytes. Log large collections as a Table, a Histogram or an artifact.
MAX_KEYS_PER_ROW = 10_000

#: Nesting depth of a logged dict, a config or a summary value (a dict inside a dict is depth 2).
MAX_DEPTH = 64

#: UTF-8 bytes of one string value in a history row or summary. Longer text belongs in a file
#: (``run.save``), an ``Html`` value or an artifact.
MAX_STRING_BYTES = 1 << 20

#: Encoded bytes of one journal record. The shipper never sends a batch larger than
#: :data:`MAX_BATCH_BYTES`, so any record below this fits a batch on its own.
MAX_RECORD_BYTES = 16 << 20

#: Encoded bytes per batch the shipper sends (well below the server's default 64 MiB body limit).
MAX_BATCH_BYTES = 24 << 20

#: Characters of an alert's title (``run.alert``; W&B advises fewer than 64) and of its text.
MAX_ALERT_TITLE_LENGTH = 256
MAX_ALERT_TEXT_LENGTH = 100_000

#: The levels of an alert, W&B's ``AlertLevel`` values.
ALERT_LEVELS = ("INFO", "WARN", "ERROR")

#: Nesting depth of a run filter: parentheses and ``not`` in the filter language, ``$and``,
#: ``$or`` and ``$not`` in a filter document (the dashboard's web/src/filter.ts agrees).
MAX_FILTER_DEPTH = 64

#: The latest timestamp accepted (seconds since the epoch): 9999-01-01 UTC, which every date
#: library can show in any time zone. Timestamps (a run's start, a row's ``_timestamp``, a
#: heartbeat, a console line) are between 0 and this; runtimes at most this in magnitude.
MAX_TIMESTAMP = 253_370_764_800.0


#: (parent trail, key): the path to a node, built only when one is too deep
_Trail = tuple[object, object] | None


def too_deep(value: object, limit: int = MAX_DEPTH) -> str | None:
    """Where ``value`` (JSON-like: dicts and lists) is nested deeper than ``limit`` levels, as a
    path like ``a.b[0].c``, or None. A dict or a list is one level. Iterative, so any depth
    (even one that would exhaust Python's recursion) is measured safely."""
    if type(value) is not dict and type(value) is not list:
        return None
    stack: list[tuple[dict[object, object] | list[object], int, _Trail]] = [(value, 1, None)]
    while stack:
        node, depth, trail = stack.pop()
        if depth > limit:
            return _path(trail)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1, (trail, key)))
    return None


def _path(trail: _Trail) -> str:
    keys: list[object] = []
    while trail is not None:
        trail, key = trail  # type: ignore[assignment]
        keys.append(key)
    keys.reverse()
    out = ""
    for key in keys[:8]:
        out += f"[{key}]" if type(key) is int else (f".{key}" if out else str(key))
    return out + ("..." if len(keys) > 8 else "")
