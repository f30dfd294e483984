"""``runyard.Image``: numpy (HW, HWC, CHW), torch tensors (duck typed), PIL images, files."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from runyard.media._base import Media
from runyard.media._deps import require
from runyard.media._encode import ID
from runyard.media._encode import PENDING as PENDING_KEY
from runyard.media._resolve import AS

if TYPE_CHECKING:
    from runyard.media._worker import MediaContext

#: Raw pixel bytes of one image; larger ones are refused (resize or save the file instead).
MAX_IMAGE_BYTES = 256 << 20
#: W&B keeps at most this many images of a list in one row.
MAX_IMAGES_PER_ROW = 108
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_PIL_KEEP = {"1", "L", "LA", "RGB", "RGBA", "I;16"}
_FILE_EXTS = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".svg", ".tif", ".tiff"}


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None:
        return f"a {type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    return f"a {type(value).__name__}"


def is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def torch_to_numpy(value: Any) -> Any:
    return value.detach().cpu().numpy()


def to_uint8(key: str, data: Any) -> Any:
    """W&B's rule: floats in [0, 1] are scaled by 255; data with negatives is first rescaled
    to [0, 1]; the rest is clipped to [0, 255]. NaN/inf are refused."""
    import numpy as np

    kind = data.dtype.kind
    if data.dtype == np.uint8:
        return data
    if kind == "b":
        return data.astype(np.uint8) * 255
    if kind not in "fiu":
        raise Media._fail(
            key,
            f"image data of dtype {data.dtype} ({_describe(data)})",
            "use uint8 in [0, 255] or floats in [0, 1]",
        )
    if kind == "f" and not np.isfinite(data).all():
        raise Media._fail(
            key,
            f"the image ({_describe(data)}) contains NaN or infinite values",
            "replace them first, e.g. np.nan_to_num(x)",
        )
    lo = data.min()
    if lo < 0:
        span = data.max() - lo
        data = (data - lo) / (span if span else 1)
    if data.max() <= 1.0:
        data = data * 255
    return np.clip(data, 0, 255).astype(np.uint8)


class Image(Media):
    """An image, stored as a PNG (or the given file as it is) under ``media/images``.

    ``data_or_path``: a numpy array (HW, HWC or CHW with 1, 3 or 4 channels; uint8, or floats
    in [0, 1]), a torch tensor (CHW, as torchvision), a PIL image, a matplotlib figure, or the
    path of an image file. ``masks``/``boxes`` take W&B's dict forms.
    """

    _log_type = "image-file"

    def __init__(
        self,
        data_or_path: Any,
        mode: str | None = None,
        caption: str | None = None,
        grouping: int | None = None,
        classes: Any = None,
        boxes: Mapping[str, Any] | None = None,
        masks: Mapping[str, Any] | None = None,
        file_type: str | None = None,
        normalize: bool = True,
    ) -> None:
        self._data = data_or_path
        self._mode = mode
        self._caption = None if caption is None else str(caption)
        self._grouping = grouping
        self._boxes = boxes
        self._masks = masks
        self._classes = classes
        self._width: int | None = None
        self._height: int | None = None

    # -- the training-thread part ----------------------------------------------------------

    def _raw(self, key: str) -> tuple[dict[str, Any], list[Any], int, int, str]:
        """``(spool header, payload, width, height, format)``: cheap conversions only."""
        data = self._data
        if isinstance(data, str | os.PathLike):
            return self._file(key, Path(data))
        if type(data).__module__.startswith("matplotlib"):
            data = _figure_pixels(data)
        if hasattr(data, "tobytes") and hasattr(data, "mode") and hasattr(data, "size"):
            return self._pil(key, data)
        if is_torch(data):
            data = torch_to_numpy(data)
            if data.ndim == 3 and data.shape[0] in (1, 3, 4):
                data = data.transpose(1, 2, 0)
        if not hasattr(data, "shape") or not hasattr(data, "dtype"):
            raise self._fail(
                key,
                f"runyard.Image got {_describe(data)}",
                "pass a numpy array, a torch tensor, a PIL image or an image file's path",
            )
        import numpy as np

        a = np.asarray(data)
        if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
            a = a.transpose(1, 2, 0)  # CHW
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[:, :, 0]
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)) or 0 in a.shape:
            raise self._fail(
                key,
                f"runyard.Image got {_describe(data)}",
                "an image is HW, HWC or CHW with 1, 3 or 4 channels",
            )
        if a.size > MAX_IMAGE_BYTES:
            raise self._fail(
                key,
                f"the image ({_describe(data)}) has {a.size} bytes of pixels, more than "
                f"{MAX_IMAGE_BYTES >> 20} MiB",
                "resize it, or save the file with run.save()",
            )
        a = np.ascontiguousarray(to_uint8(key, a))
        h, w = a.shape[:2]
        channels = 1 if a.ndim == 2 else a.shape[2]
        natural = _MODES[channels]
        mode = self._mode or natural
        if mode != natural:
            if not (mode == "RGB" and natural == "RGBA"):
                raise self._fail(
                    key,
                    f"mode {mode!r} does not fit {_describe(data)}",
                    "leave mode out, or use L (HW), RGB (HWx3) or RGBA (HWx4)",
                )
            a = np.ascontiguousarray(a[:, :, :3])
        header = {"enc": "png", "sub": "images", "mode": mode, "w": int(w), "h": int(h)}
        return header, [a.data.cast("B")], int(w), int(h), "png"

    def _pil(self, key: str, image: Any) -> tuple[dict[str, Any], list[Any], int, int, str]:
        if image.mode not in _PIL_KEEP:
            image = image.convert("RGBA" if "A" in image.mode or image.mode == "P" else "RGB")
        w, h = image.size
        if w * h * max(len(image.getbands()), 1) > MAX_IMAGE_BYTES:
            raise self._fail(
                key, f"the PIL image is {w}x{h}", "resize it, or save the file with run.save()"
            )
        header = {"enc": "png", "sub": "images", "mode": image.mode, "w": w, "h": h}
        return header, [image.tobytes()], int(w), int(h), "png"

    def _file(self, key: str, path: Path) -> tuple[dict[str, Any], list[Any], int, int, str]:
        ext = path.suffix.lower()
        if not path.is_file():
            raise self._fail(key, f"the image file {str(path)!r} does not exist", "check the path")
        if ext not in _FILE_EXTS:
            raise self._fail(
                key,
                f"{str(path)!r} is not an image file this knows ({ext or 'no extension'})",
                f"use one of {', '.join(sorted(_FILE_EXTS))}, or load it into an array",
            )
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise self._fail(key, f"{str(path)!r} has {size} bytes", "use run.save() for it")
        data = path.read_bytes()
        w = h = 0
        if ext != ".svg":
            pil = require("PIL.Image", "Pillow", "runyard.Image")
            import io

            try:
                with pil.open(io.BytesIO(data)) as im:
                    w, h = im.size
            except Exception as exc:
                raise self._fail(
                    key, f"{str(path)!r} is not a readable image ({exc})", "check the file"
                ) from None
        fmt = "jpeg" if ext == ".jpg" else ext[1:]
        return {"enc": "file", "sub": "images", "ext": ext}, [data], w, h, fmt

    def _ref(self, ctx: MediaContext, key: str) -> tuple[dict[str, Any], list[int]]:
        header, payload, w, h, fmt = self._raw(key)
        extra = self._overlays(ctx, key)  # checked before anything is spooled
        entry = ctx.spool(header, payload)
        self._width, self._height = w, h
        ref: dict[str, Any] = {"_type": self._log_type, "format": fmt, "width": w, "height": h}
        if self._caption is not None:
            ref["caption"] = self._caption
        if self._grouping:
            ref["grouping"] = self._grouping
        ids = [entry]
        masks, boxes = extra
        if masks:
            ref["masks"] = {}
            for name, (mask_header, mask_payload, labels) in masks.items():
                mask_id = ctx.spool(mask_header, mask_payload)
                ids.append(mask_id)
                ref["masks"][name] = {"_type": "mask", ID: mask_id, "class_labels": labels}
        if boxes:
            ref["boxes"] = {}
            for name, doc in boxes.items():
                box_json = orjson.dumps(doc)
                box_id = ctx.spool(
                    {"enc": "file", "sub": "metadata/boxes2D", "ext": ".boxes2D.json"}, [box_json]
                )
                ids.append(box_id)
                ref["boxes"][name] = {"_type": "boxes2D", ID: box_id}
        ref[ID] = entry
        return ref, ids

    def _overlays(
        self, ctx: MediaContext, key: str
    ) -> tuple[dict[str, tuple[dict[str, Any], list[Any], Any]], dict[str, Any]]:
        masks: dict[str, tuple[dict[str, Any], list[Any], Any]] = {}
        for name, spec in (self._masks or {}).items():
            masks[str(name)] = _mask(key, str(name), spec)
        boxes = {str(n): _boxes(key, str(n), spec) for n, spec in (self._boxes or {}).items()}
        return masks, boxes

    def _journal(self, ctx: MediaContext, key: str) -> Any:
        ref, ids = self._ref(ctx, key)
        ref[PENDING_KEY] = ids
        return ref

    @classmethod
    def _seq_journal(cls, ctx: MediaContext, key: str, images: Sequence[Image]) -> Any:
        images = list(images)[:MAX_IMAGES_PER_ROW]
        refs = []
        ids: list[int] = []
        for image in images:
            ref, got = image._ref(ctx, key)
            refs.append(ref)
            ids.extend(got)
        first = refs[0]
        meta: dict[str, Any] = {
            "_type": "images/separated",
            "width": first["width"],
            "height": first["height"],
            "format": first["format"],
            "count": len(refs),
            "filenames": [{ID: r[ID], AS: "path"} for r in refs],
        }
        if images[0]._caption is not None:
            meta["captions"] = [i._caption or "" for i in images]
        if any("masks" in r for r in refs):
            meta["all_masks"] = [r.get("masks") for r in refs]
        if any("boxes" in r for r in refs):
            meta["all_boxes"] = [r.get("boxes") for r in refs]
        meta[PENDING_KEY] = ids
        return meta

    # -- reading back (Api) ------------------------------------------------------------------

    @property
    def width(self) -> int | None:
        return self._width

    @property
    def height(self) -> int | None:
        return self._height


def _figure_pixels(fig: Any) -> Any:
    """A matplotlib figure (or pyplot) drawn into an RGBA array."""
    import numpy as np

    if hasattr(fig, "gcf"):
        fig = fig.gcf()
    canvas = fig.canvas
    if not hasattr(canvas, "buffer_rgba"):  # a non-raster backend (or one a converter left)
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def _mask(key: str, name: str, spec: Any) -> tuple[dict[str, Any], list[Any], Any]:
    import numpy as np

    if not isinstance(spec, Mapping) or "mask_data" not in spec:
        raise Media._fail(
            key,
            f"mask {name!r} is {type(spec).__name__}",
            'give {"mask_data": 2-D array of class ids, "class_labels": {id: name}}',
        )
    data = spec["mask_data"]
    if is_torch(data):
        data = torch_to_numpy(data)
    a = np.asarray(data)
    if a.ndim != 2 or a.dtype.kind not in "iub" or a.size == 0:
        raise Media._fail(
            key,
            f"mask {name!r} has {_describe(a)}",
            "mask_data is a 2-D array of integer class ids (0-255)",
        )
    if a.size and (a.min() < 0 or a.max() > 255):
        raise Media._fail(key, f"mask {name!r} has class ids outside 0-255", "use ids 0-255")
    a = np.ascontiguousarray(a.astype(np.uint8))
    labels = spec.get("class_labels")
    if labels is not None:
        labels = {str(int(k)): str(v) for k, v in dict(labels).items()}
    else:  # W&B's default: a name for each class id present
        labels = {str(int(c)): f"class_{int(c)}" for c in np.unique(a)}
    header = {
        "enc": "png",
        "sub": "images/mask",
        "ext": ".mask.png",
        "mode": "L",
        "w": int(a.shape[1]),
        "h": int(a.shape[0]),
    }
    return header, [a.data.cast("B")], labels


_POSITION_KEYS = ({"minX", "maxX", "minY", "maxY"}, {"middle", "width", "height"})


def _boxes(key: str, name: str, spec: Any) -> dict[str, Any]:
    fix = (
        'give {"box_data": [{"position": {"minX", "maxX", "minY", "maxY"} or '
        '{"middle": [x, y], "width", "height"}, "class_id": int, "box_caption": str, '
        '"scores": {name: number}, "domain": "pixel" (optional)}], "class_labels": {id: name}}'
    )
    if not isinstance(spec, Mapping) or not isinstance(spec.get("box_data"), list | tuple):
        raise Media._fail(key, f"boxes {name!r} are {type(spec).__name__}", fix)
    out = []
    for i, box in enumerate(spec["box_data"]):
        position = box.get("position") if isinstance(box, Mapping) else None
        if not isinstance(position, Mapping) or not any(k <= set(position) for k in _POSITION_KEYS):
            raise Media._fail(key, f"box {i} of {name!r} has no valid position", fix)
        item: dict[str, Any] = {
            "position": {str(k): _number(v) for k, v in position.items()},
            "class_id": int(box.get("class_id", 0)),
        }
        if "box_caption" in box:
            item["box_caption"] = str(box["box_caption"])
        if "scores" in box:
            item["scores"] = {str(k): _number(v) for k, v in dict(box["scores"]).items()}
        if "domain" in box:
            item["domain"] = str(box["domain"])
        out.append(item)
    result: dict[str, Any] = {"box_data": out}
    labels = spec.get("class_labels")
    if labels is not None:
        result["class_labels"] = {str(int(k)): str(v) for k, v in dict(labels).items()}
    else:  # W&B's default: a name for each class id used
        ids = sorted({item["class_id"] for item in out})
        result["class_labels"] = {str(c): f"class_{c}" for c in ids}
    return result


def _number(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [float(v) for v in value]
    item = getattr(value, "item", None)
    return float(item() if item is not None else value)
