"""Validation and flattening of the values passed to ``log()``.

This runs on the hot path of every ``log()`` call, so it avoids imports (numpy is recognised by
duck typing) and allocates one output dict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from runyard._json import float_marker

Scalar = float | int | bool | str | None

_RESERVED = frozenset({"_step", "_runtime", "_timestamp"})


def _convert(key: str, value: Any) -> Any:
    """Return the journal form of one logged value, or raise ``TypeError`` naming ``key``."""
    tp = type(value)
    if tp is float:
        return value if value - value == 0.0 else float_marker(value)
    if tp is int or tp is bool or tp is str or value is None:
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
    if isinstance(value, bool | int):
        return int(value) if not isinstance(value, bool) else bool(value)
    if isinstance(value, float):
        return _convert(key, float(value))
    if isinstance(value, str):
        return str(value)
    raise TypeError(
        f"runyard.log: unsupported value for key {key!r}: {type(value).__name__} "
        f"({_preview(value)}). Log numbers, bools, strings or None; log arrays element by "
        f"element (e.g. {{'{key}/0': x[0]}}) or as a summary statistic (x.mean())."
    )


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def flatten_into(out: dict[str, Any], data: Mapping[str, Any], prefix: str = "") -> None:
    """Flatten ``data`` into ``out``: nested mappings become ``a/b`` keys, values are checked."""
    for key, value in data.items():
        if type(key) is not str:
            key = str(key)
        full = prefix + key if prefix else key
        tp = type(value)
        # The common cases first, by exact type: this runs for every value of every log().
        if tp is float:
            if value - value != 0.0:  # NaN or +-inf
                value = float_marker(value)
        elif tp is int or tp is str or tp is bool or value is None:
            pass
        elif tp is dict or isinstance(value, Mapping):
            flatten_into(out, value, full + "/")
            continue
        else:
            value = _convert(full, value)
        if full in _RESERVED:
            raise ValueError(
                f"runyard.log: {full!r} is set by runyard itself; pass step=... to choose the step"
            )
        out[full] = value


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
