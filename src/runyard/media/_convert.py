"""W&B's rules for values that are not plain numbers or strings (``log()``'s slow path).

Called by :func:`runyard.sdk.values.flatten_into` for any value it does not know:

* a media object (``Image``, ``Histogram``, ``Table``, ...) → its journal form;
* a list/tuple of media of one type → W&B's list form (``images/separated``, ``audio``, ...);
  any other list or tuple stays a list (elements converted by these rules);
* a numpy array or torch tensor: one element → that value; at most 32 → a list; more → a
  32-bin histogram (as W&B's history encoder does);
* a pandas DataFrame → a ``Table``; a plotly or matplotlib figure → ``Plotly.make_plot_media``;
* bytes → text (UTF-8), dates → ISO text, enums → their name, sets → lists.
"""

from __future__ import annotations

import datetime
import enum
from typing import TYPE_CHECKING, Any

from runyard._json import INT64_MAX, INT64_MIN, float_marker
from runyard.media._base import Media, MediaError
from runyard.media._histogram import Histogram
from runyard.media._image import _describe, is_torch, torch_to_numpy
from runyard.media._types import Plotly, Table
from runyard.sdk.values import _big_int

if TYPE_CHECKING:
    from runyard.media._worker import MediaContext

#: Arrays up to this many elements are logged as lists; larger ones as histograms (W&B).
MAX_ARRAY_AS_LIST = 32
AUTO_HISTOGRAM_BINS = 32
_MAX_DEPTH = 64


def convert_value(ctx: MediaContext, key: str, value: Any) -> Any:
    """The journal form of ``value`` logged under ``key`` (see the module docstring)."""
    if isinstance(value, Media):
        return value._journal(ctx, key)
    if isinstance(value, list | tuple | range):
        items = list(value)
        if items and all(isinstance(v, Media) for v in items):
            kinds = {type(v) for v in items}
            first = type(items[0])
            seq = getattr(first, "_seq_journal", None)
            if len(kinds) != 1 or seq is None:
                names = sorted(k.__name__ for k in kinds)
                raise MediaError(
                    f"runyard.log: cannot log {key!r}: a list of {', '.join(names)}; a list "
                    f"under one key holds media of one type (Image, Audio, Video or Html): "
                    f"log the others under their own keys"
                )
            return seq(ctx, key, items)
        return [_plain(key, v, 1) for v in items]
    module = type(value).__module__
    if is_torch(value):
        value = torch_to_numpy(value)
    if hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "tolist"):
        return _array(ctx, key, value)
    if module.startswith("pandas") and hasattr(value, "itertuples"):
        return Table(dataframe=value)._journal(ctx, key)
    if module.startswith(("plotly", "matplotlib")):
        return Plotly.make_plot_media(value)._journal(ctx, key)
    return _plain(key, value, 0)


def _array(ctx: MediaContext, key: str, value: Any) -> Any:
    size = int(value.size)
    if size == 1:
        return _plain(key, value.reshape(-1)[0].item(), 0)
    if size <= MAX_ARRAY_AS_LIST:
        return _plain(key, value.tolist(), 0)
    if value.dtype.kind not in "fiub":
        raise MediaError(
            f"runyard.log: cannot log {key!r}: {_describe(value)}; arrays of more than "
            f"{MAX_ARRAY_AS_LIST} numbers become histograms: log numbers, or a Table"
        )
    return Histogram(value, num_bins=AUTO_HISTOGRAM_BINS)._journal(ctx, key)


def _plain(key: str, value: Any, depth: int) -> Any:
    tp = type(value)
    if tp is float:
        return value if value - value == 0.0 else float_marker(value)
    if tp is int:
        return value if INT64_MIN <= value <= INT64_MAX else _big_int(key, value)
    if tp is str or tp is bool or value is None:
        return value
    if depth > _MAX_DEPTH:
        raise MediaError(f"runyard.log: cannot log {key!r}: nested more than {_MAX_DEPTH} deep")
    if isinstance(value, list | tuple | set | frozenset | range):
        return [_plain(key, v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(key, v, depth + 1) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _plain(key, int(value), depth)
    if isinstance(value, float):
        return _plain(key, float(value), depth)
    if isinstance(value, str):
        return str(value)
    if is_torch(value):
        value = torch_to_numpy(value)
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return _plain(key, value.tolist(), depth + 1)
    item = getattr(value, "item", None)
    if item is not None:
        return _plain(key, item(), depth + 1)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, Media):
        raise MediaError(
            f"runyard.log: cannot log {key!r}: a {type(value).__name__} inside a list or dict "
            f"with other values; log it under its own key (or a list of one media type)"
        )
    text = repr(value)
    raise TypeError(
        f"runyard.log: unsupported value for key {key!r}: {type(value).__name__} "
        f"({text if len(text) <= 60 else text[:57] + '...'}). Log numbers, bools, strings, "
        f"lists, numpy arrays or runyard media (Image, Histogram, Table, Audio, Video, Html)."
    )
