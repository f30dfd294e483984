"""JSON encoding shared by the journal, the store and the CLI.

Standard JSON has no NaN or infinities, and orjson writes them as ``null``; a tracker must keep
them (a diverging loss *is* the information). Non-finite floats are therefore written as a small
marker object, ``{"__f__": "nan"}``, and turned back into floats on decode.

Integers beyond 64 bits (JSON allows them; orjson does not write them) are written as
``{"__i__": "<decimal digits>"}`` and turned back into the exact ``int``.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

FLOAT_MARKER = "__f__"
INT_MARKER = "__i__"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_NONFINITE_NAMES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def float_marker(value: float) -> dict[str, str]:
    """The marker object standing for a non-finite float."""
    if math.isnan(value):
        return {FLOAT_MARKER: "nan"}
    return {FLOAT_MARKER: "inf" if value > 0 else "-inf"}


def int_marker(value: int) -> dict[str, str]:
    """The marker object standing for an integer outside the 64-bit range."""
    return {INT_MARKER: str(value)}


def sanitize(obj: Any) -> Any:
    """Return ``obj`` with non-finite floats (and ints beyond 64 bits) replaced by markers
    (containers are copied)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else float_marker(obj)
    if type(obj) is int and not INT64_MIN <= obj <= INT64_MAX:
        return int_marker(obj)
    if isinstance(obj, dict):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [sanitize(v) for v in obj]
    return obj


def restore(obj: Any) -> Any:
    """Inverse of :func:`sanitize`."""
    if isinstance(obj, dict):
        if len(obj) == 1:
            if FLOAT_MARKER in obj:
                name = obj[FLOAT_MARKER]
                if name in _NONFINITE_NAMES:
                    return _NONFINITE_NAMES[name]
            elif INT_MARKER in obj:
                digits = obj[INT_MARKER]
                if type(digits) is str and digits.lstrip("-").isdigit():
                    return int(digits)
        return {k: restore(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [restore(v) for v in obj]
    return obj


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` (already sanitized where it matters) to compact JSON bytes."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def dumps_doc(obj: Any) -> str:
    """Encode a document (config, summary) with non-finite floats preserved as markers."""
    return dumps(sanitize(obj)).decode()


def loads_doc(data: str | bytes | None) -> Any:
    if data is None:
        return None
    return restore(orjson.loads(data))
