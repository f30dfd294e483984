"""Encoders: a spool entry's raw payload → the bytes of the file that the run stores.

Each runs on the encoder thread (or in recovery), never on the training thread. An encoder gets
the entry's header (its arguments), the payload, and the results of entries encoded before it
(a table's image cells), and returns the file's bytes, its extension and the extra run files it
references (a table's images).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from runyard.media._deps import require

PENDING = "__m__"
ID = "__id__"


@dataclass
class Encoded:
    data: bytes
    ext: str
    #: (name, blob key, size) of other run files this one names (a table's image cells).
    files: list[tuple[str, str, int]] = field(default_factory=list)
    #: Fields that go into the reference itself instead of a file (a histogram's counts and
    #: edges); ``data`` is unused then.
    inline: dict[str, Any] | None = None


Results = dict[int, dict[str, Any]]
Encoder = Callable[[dict[str, Any], bytes, Results], Encoded]


def _png(header: dict[str, Any], payload: bytes, results: Results) -> Encoded:
    pil = require("PIL.Image", "Pillow", "runyard.Image")
    image = pil.frombytes(header["mode"], (header["w"], header["h"]), payload)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    return Encoded(out.getvalue(), ".png")


def _file(header: dict[str, Any], payload: bytes, results: Results) -> Encoded:
    return Encoded(payload, header["ext"])


def _wav(header: dict[str, Any], payload: bytes, results: Results) -> Encoded:
    import numpy as np

    sf = require("soundfile", "soundfile", "runyard.Audio")
    samples = np.frombuffer(payload, dtype=np.float32)
    channels = int(header["channels"])
    if channels > 1:
        samples = samples.reshape(-1, channels)
    out = io.BytesIO()
    sf.write(out, samples, int(header["rate"]), format="WAV", subtype="PCM_16")
    return Encoded(out.getvalue(), ".wav")


def _video(header: dict[str, Any], payload: bytes, results: Results) -> Encoded:
    import numpy as np

    t, c, h, w = header["shape"]
    frames = np.frombuffer(payload, dtype=np.uint8).reshape(t, c, h, w).transpose(0, 2, 3, 1)
    fmt = header["format"]
    fps = float(header["fps"])
    if fmt == "gif":
        pil = require("PIL.Image", "Pillow", "runyard.Video")
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[c]
        images = [pil.fromarray(f[:, :, 0] if c == 1 else f, mode=mode) for f in frames]
        out = io.BytesIO()
        images[0].save(
            out,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=max(round(1000 / fps), 10),
            loop=0,
        )
        return Encoded(out.getvalue(), ".gif")
    iio = require("imageio.v3", "imageio imageio-ffmpeg", "runyard.Video (mp4/webm)")
    rgb = frames if c == 3 else np.repeat(frames[..., :1], 3, axis=3)
    options: dict[str, Any] = {"fps": fps}
    if fmt == "mp4":
        # H.264 in yuv420p (what browsers play); sizes are even already (padded by log()), so
        # imageio must not rescale them to its default multiple of 16.
        options.update(codec="libx264", pixelformat="yuv420p", macro_block_size=2)
    data = iio.imwrite("<bytes>", rgb, extension=f".{fmt}", **options)
    return Encoded(bytes(data), f".{fmt}")


_local = threading.local()


def set_pause(pause: Callable[[], None] | None) -> None:
    """The calling (encoder) thread's pause point: encoders call it between chunks of long
    work, and it returns when the training thread is not in the middle of a ``log()``
    (see ``MediaContext``)."""
    _local.pause = pause


def pause() -> None:
    fn = getattr(_local, "pause", None)
    if fn is not None:
        fn()


def _hist(header: dict[str, Any], payload: bytes | memoryview, results: Results) -> Encoded:
    """A histogram's counts and edges, exactly ``np.histogram(values, bins)``'s (the reference
    stays inline), by :func:`runyard.media._binning.numpy_histogram`; between chunks the
    encoder lets a ``log()`` on the training thread finish first (binning is many short numpy
    calls that would otherwise keep taking the GIL from it)."""
    import numpy as np

    from runyard._json import sanitize
    from runyard.media._binning import numpy_histogram

    values = np.frombuffer(payload, dtype=np.dtype(header["dtype"]))
    counts, edges = numpy_histogram(values, int(header["bins"]), pause)
    del values  # no reference to the payload (a view of the spool's mapping) survives
    return Encoded(b"", "", inline={"values": counts.tolist(), "bins": sanitize(edges.tolist())})


def _table(header: dict[str, Any], payload: bytes, results: Results) -> Encoded:
    """The table's JSON, its image cells resolved to run files ``media/images/<sha20>.png``."""
    doc = orjson.loads(payload)
    files: list[tuple[str, str, int]] = []

    def cell(value: Any) -> Any:
        if type(value) is dict:
            entry_id = value.get(ID)
            if entry_id is not None:
                result = results.get(int(entry_id))
                out = {k: cell(v) for k, v in value.items() if k not in (ID, PENDING)}
                if result is None or "error" in result:
                    out["error"] = (result or {}).get("error", "not encoded")
                    return out
                hexdigest = result["key"].split(":", 1)[1]
                name = f"media/{result['subdir']}/{hexdigest[:20]}{result['ext']}"
                files.append((name, result["key"], result["size"]))
                out.update(sha256=hexdigest, size=result["size"], path=name)
                return out
            return {k: cell(v) for k, v in value.items()}
        if type(value) is list:
            return [cell(v) for v in value]
        return value

    doc["data"] = [[cell(v) for v in row] for row in doc["data"]]
    return Encoded(orjson.dumps(doc), ".table.json", files)


ENCODERS: dict[str, Encoder] = {
    "png": _png,
    "file": _file,
    "wav": _wav,
    "video": _video,
    "table": _table,
}
#: Encoders that take the payload in place (a view of the spool's mapping, see
#: ``SpoolEntry.view``) and keep no reference to it once they return.
IN_PLACE: dict[str, Callable[[dict[str, Any], bytes | memoryview, Results], Encoded]] = {
    "hist": _hist
}


def encode(header: dict[str, Any], payload: bytes | memoryview, results: Results) -> Encoded:
    name = header.get("enc", "")
    in_place = IN_PLACE.get(name)
    if in_place is not None:
        return in_place(header, payload, results)
    enc = ENCODERS.get(name)
    if enc is None:
        raise ValueError(f"unknown media encoder {header.get('enc')!r}")
    return enc(header, payload if isinstance(payload, bytes) else bytes(payload), results)
