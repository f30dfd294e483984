"""Validation and flattening of the values passed to ``log()``.

This runs on the hot path of every ``log()`` call, so it avoids imports (numpy is recognised by
duck typing) and allocates one output dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from runyard._json import float_marker
from runyard.limits import (
    MAX_DEPTH,
    MAX_KEY_LENGTH,
    MAX_KEYS_PER_ROW,
    MAX_STRING_BYTES,
)

Scalar = float | int | bool | str | None

_RESERVED = frozenset({"_step", "_runtime", "_timestamp"})


#: What ``_convert`` returns for a media value that could not be kept (said once, in a
#: warning): the key is left out of the row, the rest of the row is logged.
DROPPED = object()
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
#: A string of at most this many characters is below MAX_STRING_BYTES whatever it holds.
_SHORT_STRING = MAX_STRING_BYTES // 4


def _convert(key: str, value: Any, media: Any = None) -> Any:
    """Return the journal form of one logged value, or raise ``TypeError`` naming ``key``.

    ``media`` is the run's :class:`runyard.media.MediaContext` (``None``: rich values refused):
    media objects, arrays, lists, figures and data frames go to
    :func:`runyard.media.convert_value`, which applies W&B's rules to them.
    """
    tp = type(value)
    if tp is float:
        return value if value - value == 0.0 else float_marker(value)
    if tp is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else _big_int(key, value)
    if tp is str:
        return _check_string(key, value)
    if tp is bool or value is None:
        return value
    # numpy scalars and 0-d arrays (and torch scalars) expose .item(); avoid importing numpy.
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "ndim", 0) == 0 and getattr(value, "size", 1) == 1:
        try:
            converted = item()
        except Exception:
            converted = value
        if type(converted) in (float, int, bool, str):
            return _convert(key, converted)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _convert(key, int(value))
    if isinstance(value, float):
        return _convert(key, float(value))
    if isinstance(value, str):
        return _check_string(key, str(value))
    if media is not None and (tp.__module__, tp.__name__) not in _HINTED:
        from runyard.media import convert_value

        try:
            return convert_value(media, key, value)
        except OSError as exc:  # its raw data could not be written (a full disk)
            media.not_kept(key, exc)
            return DROPPED
    raise TypeError(
        f"runyard.log: unsupported value for key {key!r}: {type(value).__name__} "
        f"({_preview(value)}). {_hint(key, value)}"
    )


#: Types W&B's history has no form for, refused with advice on what to log instead (named,
#: so that ``import runyard`` does not import their modules).
_HINTED = frozenset(
    {
        ("builtins", "complex"),
        ("decimal", "Decimal"),
        ("fractions", "Fraction"),
        ("datetime", "timedelta"),
    }
)


def _hint(key: str, value: Any) -> str:
    """What to log instead of ``value``, by what it is."""
    import datetime
    import decimal
    import fractions

    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return (
            f"Log a timestamp as a number (e.g. {{'{key}': t.timestamp()}}) or as text "
            f"(t.isoformat())."
        )
    if isinstance(value, datetime.timedelta):
        return f"Log a duration as a number of seconds: {{'{key}': d.total_seconds()}}."
    if isinstance(value, decimal.Decimal | fractions.Fraction):
        return f"Log it as a float: {{'{key}': float(x)}} (or as text with str(x))."
    if isinstance(value, complex):
        return f"Log its parts: {{'{key}/real': z.real, '{key}/imag': z.imag}} (or abs(z))."
    if isinstance(value, bytes | bytearray):
        return "Decode text first (b.decode()), or save binary data as a file with run.save()."
    return (
        "Log numbers, bools, strings or None; log arrays element by element "
        f"(e.g. {{'{key}/0': x[0]}}) or as a summary statistic (x.mean())."
    )


def _big_int(key: str, value: int) -> float:
    """An int past 64 bits is kept as the nearest float, as W&B's JSON history does."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(
            f"runyard.log: the value of {key!r} is an integer of {value.bit_length()} bits, "
            f"too large even for a float; log its logarithm (math.log10(x)) or its text (str(x))"
        ) from None


def _check_string(key: str, value: str) -> str:
    if len(value) > _SHORT_STRING and len(value.encode("utf-8", "surrogatepass")) > (
        MAX_STRING_BYTES
    ):
        raise ValueError(
            f"runyard.log: the string logged as {key!r} is {len(value):,} characters, more than "
            f"the {MAX_STRING_BYTES >> 20} MiB a history value may hold; save long text as a "
            f"file (run.save) or log it as runyard.Html"
        )
    if "\x00" in value:
        raise ValueError(
            f"runyard.log: the string logged as {key!r} contains a NUL character (\\x00), "
            f"which the store cannot hold; remove it (s.replace('\\x00', ''))"
        )
    return value


def check_key(key: str, part: str) -> None:
    """Refuse a metric name the store cannot hold (``key``, flattened; ``part``, its last
    component), naming it and the fix."""
    if not part:
        where = "an empty metric name" if not key else f"the metric name {key!r} ends empty"
        raise ValueError(
            f"runyard.log: {where}; name every value, e.g. runyard.log({{'loss': 0.1}}) "
            f"(nested dicts become 'a/b' names, so their keys must not be empty either)"
        )
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(
            f"runyard.log: the metric name {key[:60]!r}... is {len(key)} characters long, more "
            f"than the {MAX_KEY_LENGTH} a name may have; use shorter keys or fewer nesting levels"
        )
    if "\x00" in key:
        raise ValueError(f"runyard.log: the metric name {key!r} contains a NUL character")


def check_row_size(keys: int) -> None:
    if keys > MAX_KEYS_PER_ROW:
        raise ValueError(
            f"runyard.log: one row with {keys:,} values, more than the {MAX_KEYS_PER_ROW:,} a "
            f"row may have; log large collections as a runyard.Table or runyard.Histogram, or "
            f"save them as a file (run.save)"
        )


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def flatten_into(
    out: dict[str, Any],
    data: Mapping[str, Any],
    prefix: str = "",
    depth: int = 1,
    media: Any = None,
) -> None:
    """Flatten ``data`` into ``out``: nested mappings become ``a/b`` keys; keys and values are
    checked (``ValueError``/``TypeError`` naming the key) so that nothing the store cannot hold
    reaches the journal. ``out`` may be partly filled when it raises: callers discard it."""
    if depth > MAX_DEPTH:
        raise ValueError(
            f"runyard.log: the values under {prefix[:60]!r} are nested more than {MAX_DEPTH} "
            f"levels deep; flatten them or log them as a Table"
        )
    for key, value in data.items():
        if type(key) is not str:
            key = str(key)
        full = prefix + key if prefix else key
        tp = type(value)
        # The common cases first, by exact type: this runs for every value of every log().
        if tp is float:
            if value - value != 0.0:  # NaN or +-inf
                value = float_marker(value)
        elif tp is int:
            if not _INT64_MIN <= value <= _INT64_MAX:
                value = _big_int(full, value)
        elif tp is str:
            if len(value) > _SHORT_STRING or "\x00" in value:
                _check_string(full, value)
        elif tp is bool or value is None:
            pass
        elif tp is dict or isinstance(value, Mapping):
            flatten_into(out, value, full + "/", depth + 1, media)
            continue
        else:
            value = _convert(full, value, media)
            if value is DROPPED:
                continue
        if full in _RESERVED:
            raise ValueError(
                f"runyard.log: {full!r} is set by runyard itself; pass step=... to choose the step"
            )
        if not key or len(full) > MAX_KEY_LENGTH or "\x00" in key:
            check_key(full, key)
        out[full] = value
    if not prefix and len(out) > MAX_KEYS_PER_ROW:
        check_row_size(len(out))


def decode_value(value: Any) -> Any:
    """Turn a journal value back into its Python form (markers into non-finite floats)."""
    if type(value) is dict:
        name = value.get("__f__")
        if name == "nan":
            return math.nan
        if name == "inf":
            return math.inf
        if name == "-inf":
            return -math.inf
    return value
