"""Rich values for ``log()``: images, histograms, tables, audio, video, HTML, plots.

The interface a media type implements is :class:`Media` (``_journal(ctx, key)``: on the
training thread, validate and return the journal form). Values that become files write their
raw content to the run's spool and journal a pending reference; the encoder thread writes the
file into the local blob store and the resolver (called by the shipper, recovery and ``runyard
sync``) turns pending references into W&B's references (``{"_type": "image-file", "sha256",
"size", "path", ...}``) and puts the files into the store before the rows that name them.
See docs/media.md for the stored formats.

Modules: ``_spool`` (raw entries), ``_encode`` (entry → file bytes), ``_worker``
(:class:`MediaContext`, the encoder thread, :func:`complete_records` for recovery),
``_resolve`` (pending → stored references), the types (``_image``, ``_histogram``,
``_types``), ``_convert`` (W&B's value rules), ``load`` (reading values back).
"""

from __future__ import annotations

from runyard.media._base import Media, MediaError
from runyard.media._convert import convert_value
from runyard.media._deps import MissingDependencyError
from runyard.media._histogram import Histogram
from runyard.media._image import Image
from runyard.media._spool import spool_dir_for
from runyard.media._types import Audio, Html, Plotly, Table, Video
from runyard.media._worker import MediaContext, complete_records, discard_spool

__all__ = [
    "Audio",
    "Histogram",
    "Html",
    "Image",
    "Media",
    "MediaContext",
    "MediaError",
    "MissingDependencyError",
    "Plotly",
    "Table",
    "Video",
    "complete_records",
    "convert_value",
    "discard_spool",
    "spool_dir_for",
]
