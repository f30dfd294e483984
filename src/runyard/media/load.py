"""Loading stored media references back (``ApiRun.load``)."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import IO, Any

import orjson

from runyard._json import restore
from runyard.media._deps import require

#: W&B's list forms of file media: the field that holds the single references.
_LISTS = {"audio": "audio", "videos": "videos", "html": "html"}


def load_reference(
    open_file: Callable[[str], IO[bytes]], ref: Mapping[str, Any], as_numpy: bool = False
) -> Any:
    """See :meth:`runyard.api.ApiRun.load`."""
    kind = ref.get("_type") if isinstance(ref, Mapping) else None
    if kind is None:
        raise ValueError(f"not a media reference: {str(ref)[:80]}")
    if "error" in ref:
        raise ValueError(f"this {kind} could not be stored: {ref['error']}")
    if kind == "histogram":
        import numpy as np

        return np.asarray(ref["values"]), np.asarray(restore(ref["bins"]), dtype=float)

    def read(name: str) -> bytes:
        with open_file(name) as fh:
            return fh.read()

    if kind == "images/separated":
        return [_image(read(name), as_numpy) for name in ref["filenames"]]
    if kind in _LISTS and isinstance(ref.get(_LISTS[kind]), list):
        return [load_reference(open_file, item, as_numpy) for item in ref[_LISTS[kind]]]
    if kind in ("image-file", "mask"):
        return _image(read(ref["path"]), as_numpy)
    if kind == "boxes2D":
        return orjson.loads(read(ref["path"]))
    if kind == "table-file":
        pd = require("pandas", "pandas", "loading a Table")
        doc = restore(orjson.loads(read(ref["path"])))
        return pd.DataFrame(doc["data"], columns=doc["columns"])
    if kind == "plotly-file":
        return orjson.loads(read(ref["path"]))
    if kind == "audio-file" and as_numpy:
        # the rate comes from the file: the wandb client's reference carries no sample_rate
        sf = require("soundfile", "soundfile", "loading an Audio's samples")
        samples, rate = sf.read(io.BytesIO(read(ref["path"])), dtype="float32")
        return samples, int(rate)
    if "path" in ref:
        return read(ref["path"])
    raise ValueError(f"cannot load a {kind!r} reference")


def _image(data: bytes, as_numpy: bool) -> Any:
    pil = require("PIL.Image", "Pillow", "loading an Image")
    image = pil.open(io.BytesIO(data))
    image.load()
    if as_numpy:
        import numpy as np

        return np.asarray(image)
    return image
