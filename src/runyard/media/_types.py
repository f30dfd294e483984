"""``Table``, ``Audio``, ``Video``, ``Html`` and ``Plotly``."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from runyard.media._base import Media
from runyard.media._encode import ID
from runyard.media._encode import PENDING as PENDING_KEY
from runyard.media._image import Image, _describe, is_torch, torch_to_numpy

if TYPE_CHECKING:
    from runyard.media._worker import MediaContext

#: W&B refuses tables of more rows than this in a run's history.
MAX_TABLE_ROWS = 10_000
#: Bytes of one file-like media value (a video, an audio file, HTML).
MAX_FILE_BYTES = 1 << 30


def _file_payload(key: str, path: Path, what: str) -> bytes:
    if not path.is_file():
        raise Media._fail(key, f"the {what} file {str(path)!r} does not exist", "check the path")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise Media._fail(
            key, f"{str(path)!r} has {size} bytes", "log at most 1 GiB; run.save() it instead"
        )
    return path.read_bytes()


def _seq(
    cls: type[Media], log_type: str, field: str, ctx: MediaContext, key: str, items: Sequence[Any]
) -> Any:
    refs = [item._journal(ctx, key) for item in items]
    ids: list[int] = []
    for r in refs:
        ids.extend(r.pop(PENDING_KEY, []))
    meta: dict[str, Any] = {"_type": log_type, "count": len(refs), field: refs}
    captions = [r.get("caption") for r in refs]
    if any(c is not None for c in captions):
        meta["captions"] = [c or "" for c in captions]
    meta[PENDING_KEY] = ids
    return meta


# -- Table ---------------------------------------------------------------------------------------


class Table(Media):
    """Rows and columns, stored as ``media/table/<key>_<step>_<sha>.table.json`` with
    ``{"columns", "data"}``; cells may hold numbers, strings, None, lists and ``Image``s.

    Logging the same table again after ``add_data`` stores the whole table again (a new file,
    as W&B does by default); unchanged content is stored once.
    """

    _log_type = "table-file"
    MAX_ROWS = MAX_TABLE_ROWS

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        data: Sequence[Sequence[Any]] | None = None,
        rows: Sequence[Sequence[Any]] | None = None,
        dataframe: Any = None,
        dtype: Any = None,
        optional: Any = True,
        allow_mixed_types: bool = False,
        log_mode: str | None = None,
    ) -> None:
        if dataframe is not None:
            columns = [str(c) for c in dataframe.columns]
            data = dataframe.itertuples(index=False, name=None)
        data = data if data is not None else rows
        if columns is None:
            first = None
            if data is not None:
                data = [list(r) for r in data]
                first = data[0] if data else None
            columns = [f"Column {i + 1}" for i in range(len(first or []))]
        self.columns: list[str] = [str(c) for c in columns]
        self.data: list[list[Any]] = []
        for row in data or ():
            self.add_data(*row)

    def add_data(self, *data: Any) -> None:
        """Append one row (one value per column)."""
        if len(data) != len(self.columns):
            raise ValueError(
                f"runyard.Table: this table expects {len(self.columns)} columns "
                f"{self.columns}, the row has {len(data)} values: {list(data)[:6]!r}"
            )
        self.data.append(list(data))

    def add_column(self, name: str, data: Sequence[Any]) -> None:
        """Add a column (one value per existing row)."""
        if name in self.columns:
            raise ValueError(f"runyard.Table: there is a column {name!r} already")
        values = list(data)
        if self.data and len(values) != len(self.data):
            raise ValueError(
                f"runyard.Table: column {name!r} has {len(values)} values; the table has "
                f"{len(self.data)} rows"
            )
        if not self.data:
            self.data = [[] for _ in values]
        self.columns.append(str(name))
        for row, value in zip(self.data, values, strict=True):
            row.append(value)

    def get_column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.data]

    def _journal(self, ctx: MediaContext, key: str) -> Any:
        if not self.columns:
            raise self._fail(
                key, "the table has no columns", "give columns=[...] (and rows with add_data)"
            )
        if len(self.data) > MAX_TABLE_ROWS:
            raise self._fail(
                key,
                f"the table has {len(self.data)} rows, more than {MAX_TABLE_ROWS}",
                "log fewer rows, or save the data as a file or an artifact",
            )
        ncols = len(self.columns)
        for i, row in enumerate(self.data):
            if len(row) != ncols:
                raise self._fail(
                    key,
                    f"row {i} has {len(row)} values for {ncols} columns {self.columns}",
                    "give each row one value per column",
                )
        from runyard._json import sanitize

        images: list[tuple[int, int, Image]] = []
        cells: list[list[Any]] = []
        for r, row in enumerate(self.data):
            out: list[Any] = []
            for c, value in enumerate(row):
                if isinstance(value, Image):
                    images.append((r, c, value))
                    out.append(None)
                else:
                    out.append(_cell(key, self.columns[c], value))
            cells.append(out)
        ids: list[int] = []
        for r, c, image in images:  # checked and spooled before the table that names them
            ref, got = image._ref(ctx, f"{key}/{self.columns[c]}")
            ids.extend(got)
            cells[r][c] = ref
        payload = orjson.dumps(
            {"columns": self.columns, "data": sanitize(cells)},
            option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
        )
        entry = ctx.spool({"enc": "table", "sub": "table"}, [payload])
        return {
            "_type": self._log_type,
            "ncols": ncols,
            "nrows": len(self.data),
            ID: entry,
            PENDING_KEY: [*ids, entry],
        }


def _cell(key: str, column: str, value: Any) -> Any:
    if value is None or type(value) in (int, float, str, bool):
        return value
    if isinstance(value, Media):
        raise Media._fail(
            key,
            f"column {column!r} holds a {type(value).__name__}",
            "table cells may hold numbers, strings, lists and runyard.Image",
        )
    if is_torch(value):
        value = torch_to_numpy(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_cell(key, column, v) for v in value]
    if isinstance(value, dict):
        return {str(k): _cell(key, column, v) for k, v in value.items()}
    return str(value)


# -- Audio ---------------------------------------------------------------------------------------


class Audio(Media):
    """Sound, stored as WAV (16-bit PCM, written with soundfile) under ``media/audio``, or
    the given file as it is. ``data_or_path``: a numpy array (samples, or samples x channels)
    of floats in [-1, 1] with ``sample_rate``, or the path of an audio file."""

    _log_type = "audio-file"

    def __init__(
        self, data_or_path: Any, sample_rate: int | None = None, caption: str | None = None
    ) -> None:
        self._data = data_or_path
        self._sample_rate = sample_rate
        self._caption = caption

    def _journal(self, ctx: MediaContext, key: str) -> Any:
        data = self._data
        ref: dict[str, Any] = {"_type": self._log_type}
        if isinstance(data, str | os.PathLike):
            path = Path(data)
            payload: Any = _file_payload(key, path, "audio")
            header: dict[str, Any] = {"enc": "file", "sub": "audio", "ext": path.suffix.lower()}
        else:
            import numpy as np

            if is_torch(data):
                data = torch_to_numpy(data)
            if self._sample_rate is None:
                raise self._fail(key, "an audio array has no sample_rate", "pass sample_rate=")
            a = np.asarray(data)
            if a.ndim not in (1, 2) or a.size == 0 or a.dtype.kind not in "fiu":
                raise self._fail(
                    key,
                    f"runyard.Audio got {_describe(data)}",
                    "give a 1-D array of samples (or samples x channels) of floats in [-1, 1]",
                )
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise self._fail(key, "the audio contains NaN or inf", "replace them first")
            if a.dtype.kind in "iu":
                a = a / float(np.iinfo(a.dtype).max)
            samples = np.ascontiguousarray(a, dtype=np.float32)
            channels = 1 if samples.ndim == 1 else samples.shape[1]
            rate = int(self._sample_rate)
            header = {"enc": "wav", "sub": "audio", "rate": rate, "channels": channels}
            payload = samples.data.cast("B")
            ref["sample_rate"] = rate
            ref["duration"] = samples.shape[0] / rate
        if self._caption is not None:
            ref["caption"] = str(self._caption)
        entry = ctx.spool(header, [payload])
        ref[ID] = entry
        ref[PENDING_KEY] = [entry]
        return ref

    @classmethod
    def _seq_journal(cls, ctx: MediaContext, key: str, items: Sequence[Audio]) -> Any:
        meta = _seq(cls, "audio", "audio", ctx, key, items)
        meta["sampleRates"] = [r.get("sample_rate") for r in meta["audio"]]
        meta["durations"] = [r.get("duration") for r in meta["audio"]]
        return meta


# -- Video ---------------------------------------------------------------------------------------


class Video(Media):
    """A video: a uint8 array T x C x H x W (C 1, 3 or 4) encoded as GIF (default, Pillow) or
    mp4/webm (imageio + imageio-ffmpeg), or the path of a video file, under ``media/videos``."""

    _log_type = "video-file"

    def __init__(
        self,
        data_or_path: Any,
        caption: str | None = None,
        fps: float | None = None,
        format: str | None = None,
    ) -> None:
        self._data = data_or_path
        self._caption = caption
        self._fps = 4 if fps is None else fps
        self._format = (format or "gif").lower()

    def _journal(self, ctx: MediaContext, key: str) -> Any:
        data = self._data
        ref: dict[str, Any] = {"_type": self._log_type}
        if isinstance(data, str | os.PathLike):
            path = Path(data)
            payload: Any = _file_payload(key, path, "video")
            header: dict[str, Any] = {"enc": "file", "sub": "videos", "ext": path.suffix.lower()}
        else:
            import numpy as np

            if self._format not in ("gif", "mp4", "webm", "ogg"):
                raise self._fail(key, f"video format {self._format!r}", "use gif, mp4, webm or ogg")
            if is_torch(data):
                data = torch_to_numpy(data)
            if not hasattr(data, "shape"):
                raise self._fail(
                    key,
                    f"runyard.Video got {_describe(data)}",
                    "give T x C x H x W uint8 or a path",
                )
            a = np.asarray(data)
            if a.ndim != 4 or a.shape[1] not in (1, 3, 4) or 0 in a.shape:
                raise self._fail(
                    key,
                    f"runyard.Video got {_describe(data)}",
                    "give frames as T x C x H x W (C = 1, 3 or 4)",
                )
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise self._fail(key, "the video contains NaN or inf", "replace them first")
            if a.nbytes > MAX_FILE_BYTES:
                raise self._fail(key, f"the video has {a.nbytes} bytes", "log at most 1 GiB")
            a = np.clip(a, 0, 255).astype(np.uint8, copy=False)
            if self._format == "mp4" and (a.shape[2] % 2 or a.shape[3] % 2):
                # H.264 (yuv420p) needs even sizes: repeat the last row/column once
                pad = ((0, 0), (0, 0), (0, a.shape[2] % 2), (0, a.shape[3] % 2))
                a = np.pad(a, pad, mode="edge")
            a = np.ascontiguousarray(a)
            header = {
                "enc": "video",
                "sub": "videos",
                "shape": list(a.shape),
                "fps": float(self._fps),
                "format": self._format,
            }
            payload = a.data.cast("B")
            ref["width"] = int(a.shape[3])
            ref["height"] = int(a.shape[2])
        if self._caption is not None:
            ref["caption"] = str(self._caption)
        entry = ctx.spool(header, [payload])
        ref[ID] = entry
        ref[PENDING_KEY] = [entry]
        return ref

    @classmethod
    def _seq_journal(cls, ctx: MediaContext, key: str, items: Sequence[Video]) -> Any:
        return _seq(cls, "videos", "videos", ctx, key, items)


# -- Html ----------------------------------------------------------------------------------------


class Html(Media):
    """HTML, stored as ``media/html/<key>_<step>_<sha>.html``; served only into a sandbox.

    ``data``: an HTML string, a text file object, or the path of an ``.html`` file. ``inject``
    adds W&B's base stylesheet link when the text has a ``<head>`` (kept for compatibility).
    """

    _log_type = "html-file"

    def __init__(self, data: Any, inject: bool = True, data_is_not_path: bool = False) -> None:
        self._data = data
        self._inject = inject
        self._not_path = data_is_not_path

    def _text(self, key: str) -> bytes:
        data = self._data
        if hasattr(data, "read"):
            text = data.read()
            return text.encode() if isinstance(text, str) else bytes(text)
        if isinstance(data, os.PathLike) or (
            isinstance(data, str)
            and not self._not_path
            and data.lower().endswith((".html", ".htm"))
            and os.path.isfile(data)
        ):
            return _file_payload(key, Path(data), "HTML")
        if isinstance(data, str):
            return data.encode()
        raise self._fail(
            key, f"runyard.Html got {_describe(data)}", "give an HTML string or an .html path"
        )

    def _journal(self, ctx: MediaContext, key: str) -> Any:
        text = self._text(key)
        if len(text) > MAX_FILE_BYTES:
            raise self._fail(key, f"the HTML has {len(text)} bytes", "log at most 1 GiB")
        entry = ctx.spool({"enc": "file", "sub": "html", "ext": ".html"}, [text])
        return {"_type": self._log_type, ID: entry, PENDING_KEY: [entry]}

    @classmethod
    def _seq_journal(cls, ctx: MediaContext, key: str, items: Sequence[Html]) -> Any:
        return _seq(cls, "html", "html", ctx, key, items)


# -- Plotly --------------------------------------------------------------------------------------


class Plotly(Media):
    """A plotly figure, stored as its plotly JSON under ``media/plotly``. A matplotlib figure
    becomes one when plotly can convert it (as W&B does), otherwise use ``Image(fig)``."""

    _log_type = "plotly-file"

    def __init__(self, val: Any) -> None:
        self._val = val

    @classmethod
    def make_plot_media(cls, val: Any) -> Media:
        """W&B's rule: plotly figures as they are; a matplotlib figure (or ``pyplot``) that
        shows images (``imshow``) becomes an ``Image``; another is converted to plotly when
        plotly is installed and can convert it (``plotly.tools.mpl_to_plotly``), else it is an
        ``Image`` of the drawn figure (W&B raises there)."""
        if type(val).__module__.startswith("matplotlib"):
            fig = val.gcf() if hasattr(val, "gcf") else val
            if any(len(getattr(ax, "images", ())) > 0 for ax in getattr(fig, "axes", ())):
                return Image(fig)
            try:
                from plotly import tools  # type: ignore[import-not-found, unused-ignore]

                with warnings.catch_warnings():  # plotly's converter's own deprecations
                    warnings.simplefilter("ignore")
                    return cls(tools.mpl_to_plotly(fig))
            except Exception:
                return Image(fig)
        return cls(val)

    def _journal(self, ctx: MediaContext, key: str) -> Any:
        val = self._val
        to_json = getattr(val, "to_plotly_json", None)
        if to_json is None and not isinstance(val, dict):
            raise self._fail(
                key, f"runyard.Plotly got {_describe(val)}", "give a plotly figure or its dict"
            )
        doc = to_json() if to_json is not None else val
        payload = orjson.dumps(
            doc,
            option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
            default=_plotly_default,
        )
        entry = ctx.spool({"enc": "file", "sub": "plotly", "ext": ".plotly.json"}, [payload])
        return {"_type": self._log_type, ID: entry, PENDING_KEY: [entry]}


def _plotly_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
