"""How logged values are stored in the ``metrics`` table's ``(value, kind, text)`` columns.

Numbers in ``value`` (ints beyond 2**53 also exactly in ``text``), strings in ``text``, and
JSON values — lists and media references such as ``{"_type": "image-file", "path": ...}`` —
as JSON text in ``text`` with kind ``KIND_JSON`` (the same on SQLite and PostgreSQL).
"""

from __future__ import annotations

import math
from typing import Any

from runyard._json import dumps, loads_doc
from runyard.sdk.values import decode_value
from runyard.store import schema as S
from runyard.store.base import StoreError


def encode_metric(value: Any) -> tuple[float | None, int, str | None]:
    """``(value, kind, text)`` columns for one logged value (journal form)."""
    tp = type(value)
    if tp is float:
        if value != value:  # NaN: stored as NULL (SQLite cannot store it; PostgreSQL sorts it high)
            return None, S.KIND_NAN, None
        return value, S.KIND_FLOAT, None
    if tp is int:
        return float(value), S.KIND_INT, (str(value) if abs(value) > 2**53 else None)
    if tp is bool:
        return float(value), S.KIND_BOOL, None
    if tp is str:
        return None, S.KIND_STR, value
    if value is None:
        return None, S.KIND_NONE, None
    number = decode_value(value)
    if isinstance(number, float):
        if math.isnan(number):
            return None, S.KIND_NAN, None
        return number, S.KIND_FLOAT, None
    if type(number) is int:  # beyond 64 bits: exact in text
        try:
            approx: float | None = float(number)
        except OverflowError:
            approx = None
        return approx, S.KIND_INT, str(number)
    if tp is dict or tp is list:  # lists, media references (journal form: markers kept)
        return None, S.KIND_JSON, dumps(value).decode()
    raise StoreError(f"cannot store metric value {value!r}")


def decode_metric(value: float | None, kind: int, text: str | None) -> Any:
    if kind == S.KIND_FLOAT:
        return value
    if kind == S.KIND_NAN:
        return math.nan
    if kind == S.KIND_INT:
        return int(text) if text is not None else int(value or 0)
    if kind == S.KIND_BOOL:
        return bool(value)
    if kind == S.KIND_STR:
        return text
    if kind == S.KIND_JSON:
        return loads_doc(text)
    return None
