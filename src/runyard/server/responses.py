"""JSON responses encoded by orjson, with non-finite floats as ``{"__f__": "nan"}`` markers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

from runyard._json import sanitize

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class ORJSONResponse(JSONResponse):
    """A JSON response; NaN and ±inf anywhere in ``content`` become markers."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(sanitize(content), option=_OPTIONS)


def json_response(content: Any, status_code: int = 200) -> ORJSONResponse:
    return ORJSONResponse(content, status_code=status_code)
