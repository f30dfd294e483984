"""``runyard.Histogram`` and the fast binning behind it (and behind arrays logged as values)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runyard.media._base import Media, MediaError

if TYPE_CHECKING:
    from runyard.media._worker import MediaContext

#: W&B's limits: 64 bins by default, at most 512.
DEFAULT_BINS = 64
MAX_LENGTH = 512
_CHUNK = 1 << 16
_SMALL = 4096


def fast_histogram(values: Any, bins: int) -> tuple[list[int], list[float]]:
    """``np.histogram(values, bins)`` as lists, computed in cache-sized chunks (about 4x faster
    on a million floats). Counts equal numpy's except, possibly, for a value within rounding of
    a bin edge. ``ValueError`` for non-finite values (as numpy)."""
    import numpy as np

    a = np.asarray(values)
    if a.dtype.kind not in "fiub":
        raise ValueError(f"values of dtype {a.dtype} are not numbers")
    a = a.ravel()
    if a.size < _SMALL or a.dtype.kind != "f":
        counts, edges = np.histogram(a, bins=bins)
        return counts.tolist(), edges.tolist()
    lo = float(a.min())
    hi = float(a.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"autodetected range of [{lo}, {hi}] is not finite")
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1, endpoint=True)
    scale = bins / (hi - lo)
    counts = np.zeros(bins + 1, dtype=np.intp)
    fbuf = np.empty(_CHUNK, dtype=np.float64)
    ibuf = np.empty(_CHUNK, dtype=np.intp)
    n = a.shape[0]
    for start in range(0, n, _CHUNK):
        x = a[start : start + _CHUNK]
        m = x.shape[0]
        f = fbuf[:m]
        i = ibuf[:m]
        np.subtract(x, lo, out=f)
        np.multiply(f, scale, out=f)
        np.copyto(i, f, casting="unsafe")
        counts += np.bincount(i, minlength=bins + 1)[: bins + 1]
    counts[bins - 1] += counts[bins]  # the maximum belongs to the last bin, as in numpy
    return counts[:bins].tolist(), edges.tolist()


class Histogram(Media):
    """A histogram, stored inline in the row: ``{"_type": "histogram", "values", "bins"}``.

    ``Histogram(sequence, num_bins=64)`` bins the values; ``Histogram(np_histogram=(counts,
    edges))`` takes a histogram made elsewhere. ``histogram`` and ``bins`` are the lists.
    """

    _log_type = "histogram"
    MAX_LENGTH = MAX_LENGTH

    def __init__(
        self,
        sequence: Sequence[Any] | Any | None = None,
        np_histogram: tuple[Any, Any] | None = None,
        num_bins: int = DEFAULT_BINS,
    ) -> None:
        self._error: str | None = None
        self.histogram: list[Any] = []
        self.bins: list[Any] = []
        if np_histogram is not None:
            if len(np_histogram) != 2:
                raise ValueError(
                    "runyard.Histogram: np_histogram must be (counts, bin_edges), "
                    "e.g. np.histogram(x)"
                )
            counts, edges = np_histogram
            self.histogram = counts.tolist() if hasattr(counts, "tolist") else list(counts)
            self.bins = edges.tolist() if hasattr(edges, "tolist") else list(edges)
        elif sequence is None:
            raise ValueError("runyard.Histogram: pass a sequence of numbers or np_histogram=")
        else:
            if type(num_bins) is not int or not 1 <= num_bins <= MAX_LENGTH:
                raise ValueError(
                    f"runyard.Histogram: num_bins must be an int from 1 to {MAX_LENGTH}, "
                    f"got {num_bins!r}"
                )
            try:
                self.histogram, self.bins = fast_histogram(sequence, num_bins)
            except (ValueError, TypeError) as exc:
                shape = getattr(sequence, "shape", None)
                what = f"shape {tuple(shape)}" if shape is not None else type(sequence).__name__
                self._error = f"{what}: {exc}"
        if self._error is None:
            if len(self.histogram) > MAX_LENGTH:
                raise ValueError(f"runyard.Histogram: at most {MAX_LENGTH} bins")
            if len(self.histogram) + 1 != len(self.bins):
                raise ValueError("runyard.Histogram: len(bins) must be len(histogram) + 1")

    def to_json(self) -> dict[str, Any]:
        return {"_type": self._log_type, "values": self.histogram, "bins": self.bins}

    def _journal(self, ctx: MediaContext | None, key: str) -> Any:
        if self._error is not None:
            raise MediaError(
                f"runyard.log: cannot make a histogram for {key!r} from {self._error}; log "
                f"finite numbers (e.g. x[np.isfinite(x)])"
            )
        from runyard._json import sanitize

        return {
            "_type": self._log_type,
            "values": self.histogram,
            "bins": sanitize(self.bins),
        }
