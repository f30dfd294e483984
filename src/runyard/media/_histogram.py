"""``runyard.Histogram``, and the binning behind it (and behind arrays logged as values).

Binning a million floats takes numpy 7-15 ms, too long for the training thread. So ``log()``
computes a large histogram off it, the way images are encoded: the values go to the run's
spool as raw bytes before ``log()`` returns (one ``writev``; durable against ``kill -9``), the
row holds a pending reference, and the encoder thread (or recovery, for a process that died)
computes the bins (:mod:`runyard.media._binning`: numpy's algorithm in fewer passes, the
counts and edges exactly ``np.histogram``'s). The training thread only checks the values
(dtype; one sum per chunk for finiteness, ``min``/``max`` only where it is not finite, so bad
input is still refused by ``log()`` with the key) and copies them. Small inputs (fewer than
:data:`SPOOL_MIN` values), ``np_histogram=`` and a histogram whose ``histogram``/``bins`` were
read already are inline at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from runyard.media._base import Media, MediaError
from runyard.media._encode import ID, PENDING

if TYPE_CHECKING:
    from runyard.media._worker import MediaContext

#: W&B's limits: 64 bins by default, at most 512.
DEFAULT_BINS = 64
MAX_LENGTH = 512
#: Inputs with at least this many values are binned on the encoder thread.
SPOOL_MIN = 1 << 14
#: Values checked and copied to the spool at a time (128K float64: 1 MiB, cache-sized).
CHUNK_VALUES = 1 << 17


def histogram_of(values: Any, bins: int) -> tuple[list[int], list[float]]:
    """``np.histogram(values, bins)`` as lists; ``ValueError``/``TypeError`` for input that
    numpy refuses (non-finite values, not numbers)."""
    import numpy as np

    a = np.asarray(values)
    if a.dtype.kind not in "fiub":
        raise ValueError(f"values of dtype {a.dtype} are not numbers")
    counts, edges = np.histogram(a.ravel(), bins=bins)
    return counts.tolist(), edges.tolist()


class Histogram(Media):
    """A histogram, stored inline in the row: ``{"_type": "histogram", "values", "bins"}``.

    ``Histogram(sequence, num_bins=64)`` bins the values (numpy's bins: ``num_bins`` equal
    bins from the minimum to the maximum); ``Histogram(np_histogram=(counts, edges))`` takes a
    histogram made elsewhere. ``histogram`` (the counts) and ``bins`` (the edges) are lists,
    computed when first read; ``log()`` bins large inputs off the training thread (see the
    module docstring). The values are read when the histogram is logged (or first read).
    """

    _log_type = "histogram"
    MAX_LENGTH = MAX_LENGTH

    def __init__(
        self,
        sequence: Sequence[Any] | Any | None = None,
        np_histogram: tuple[Any, Any] | None = None,
        num_bins: int = DEFAULT_BINS,
    ) -> None:
        self._values: Any = None
        self._num_bins = num_bins
        self._counts: list[Any] | None = None
        self._edges: list[Any] = []
        if np_histogram is not None:
            if len(np_histogram) != 2:
                raise ValueError(
                    "runyard.Histogram: np_histogram must be (counts, bin_edges), "
                    "e.g. np.histogram(x)"
                )
            counts, edges = np_histogram
            self._set(
                counts.tolist() if hasattr(counts, "tolist") else list(counts),
                edges.tolist() if hasattr(edges, "tolist") else list(edges),
            )
        elif sequence is None:
            raise ValueError("runyard.Histogram: pass a sequence of numbers or np_histogram=")
        else:
            if type(num_bins) is not int or not 1 <= num_bins <= MAX_LENGTH:
                raise ValueError(
                    f"runyard.Histogram: num_bins must be an int from 1 to {MAX_LENGTH}, "
                    f"got {num_bins!r}"
                )
            self._values = sequence

    def _set(self, counts: list[Any], edges: list[Any]) -> None:
        if len(counts) > MAX_LENGTH:
            raise ValueError(f"runyard.Histogram: at most {MAX_LENGTH} bins")
        if len(counts) + 1 != len(edges):
            raise ValueError("runyard.Histogram: len(bins) must be len(histogram) + 1")
        self._counts, self._edges = counts, edges

    def _compute(self, key: str | None = None) -> None:
        if self._counts is not None:
            return
        try:
            counts, edges = histogram_of(self._values, self._num_bins)
        except (ValueError, TypeError) as exc:
            raise self._bad(key, exc) from None
        self._set(counts, edges)

    def _bad(self, key: str | None, exc: BaseException) -> MediaError:
        shape = getattr(self._values, "shape", None)
        what = f"shape {tuple(shape)}" if shape is not None else type(self._values).__name__
        where = "runyard.Histogram" if key is None else f"runyard.log: cannot log {key!r}"
        return MediaError(
            f"{where}: cannot make a histogram from {what}: {exc}; log finite numbers "
            f"(e.g. x[np.isfinite(x)])"
        )

    @property
    def histogram(self) -> list[Any]:
        """The counts (W&B's name)."""
        self._compute()
        assert self._counts is not None
        return self._counts

    @property
    def bins(self) -> list[Any]:
        """The bin edges, one more than the counts."""
        self._compute()
        return self._edges

    def to_json(self) -> dict[str, Any]:
        return {"_type": self._log_type, "values": self.histogram, "bins": self.bins}

    def _inline(self) -> dict[str, Any]:
        from runyard._json import sanitize

        assert self._counts is not None
        return {"_type": self._log_type, "values": self._counts, "bins": sanitize(self._edges)}

    def _journal(self, ctx: MediaContext | None, key: str) -> Any:
        if self._counts is None and ctx is not None:
            spooled = self._spool(ctx, key)
            if spooled is not None:
                return spooled
        self._compute(key)
        return self._inline()

    def _spool(self, ctx: MediaContext, key: str) -> dict[str, Any] | None:
        """Spool a large numeric input for the encoder thread; ``None``: bin it now."""
        import numpy as np

        values = self._values
        if not (hasattr(values, "dtype") and hasattr(values, "shape")):
            return None  # a list or another sequence: numpy converts (and may refuse) it now
        a = np.asarray(values)
        if a.size < SPOOL_MIN or a.dtype.kind not in "fiub" or a.dtype.hasobject:
            return None
        flat = np.ascontiguousarray(a.reshape(-1))
        step = CHUNK_VALUES
        parts = [flat[i : i + step].data.cast("B") for i in range(0, flat.size, step)]
        check = None
        if flat.dtype.kind == "f":

            def check(i: int) -> None:
                # numpy's own rule (the autodetected range must be finite), checked per chunk
                # as it is copied: a sum is inf/NaN if any value is (or if it overflows:
                # then min and max decide).
                chunk = flat[i * step : (i + 1) * step]
                if not np.isfinite(np.add.reduce(chunk)):
                    lo, hi = chunk.min(), chunk.max()
                    if not (np.isfinite(lo) and np.isfinite(hi)):
                        raise self._bad(key, ValueError("the values are not all finite"))

        entry = ctx.spool(
            {"enc": "hist", "dtype": flat.dtype.str, "bins": self._num_bins}, parts, check
        )
        return {"_type": self._log_type, ID: entry, PENDING: [entry]}
