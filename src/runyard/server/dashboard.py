"""The dashboard: the built web app (``web/``, built by ``make web`` into
``runyard/server/dashboard_dist``) served by the API server at ``/``.

* ``/`` (and ``/index.html``): the app's page, never cached (it names the current assets);
* ``/assets/<name>``: the bundle's files, whose names carry a content hash, cached for a year;
* the app talks only to ``/api/v1`` and loads nothing from the internet.

When the bundle was not built, ``/`` answers a short page saying how to build it; the API works
either way. ``RUNYARD_DASHBOARD_DIR`` points at another build (for development).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

DIST = Path(__file__).resolve().parent / "dashboard_dist"
ASSET_CACHE = "public, max-age=31536000, immutable"
PAGE_CACHE = "no-cache"

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>runyard: dashboard not built</title>
<style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;
line-height:1.5;color:#1d2330}}code,pre{{background:#f3f5f9;padding:2px 5px;border-radius:3px}}
pre{{padding:10px}}</style></head>
<body><h1>The runyard dashboard is not built</h1>
<p>This server's API works (<a href="/api/v1/docs">/api/v1/docs</a>), but the web app's bundle
was not found in <code>{where}</code>.</p>
<p>Build it from a source checkout (needs Node.js 20 and npm):</p>
<pre>make web
# or: cd web &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>then reload this page.</p></body></html>
"""


def dashboard_dir() -> Path:
    """Where the built bundle is (``RUNYARD_DASHBOARD_DIR`` or the package's)."""
    override = os.environ.get("RUNYARD_DASHBOARD_DIR")
    return Path(override).resolve() if override else DIST


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at ``/`` on ``app`` (routes outside the OpenAPI document)."""

    def index() -> Response:
        page = dashboard_dir() / "index.html"
        if not page.is_file():
            return HTMLResponse(
                NOT_BUILT.format(where=html.escape(str(dashboard_dir()))),
                status_code=503,
                headers={"Cache-Control": PAGE_CACHE},
            )
        return FileResponse(page, media_type="text/html", headers={"Cache-Control": PAGE_CACHE})

    def asset(name: str) -> Response:
        root = (dashboard_dir() / "assets").resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise HTTPException(status_code=404, detail=f"no dashboard asset {name!r}")
        return FileResponse(path, headers={"Cache-Control": ASSET_CACHE})

    app.add_api_route("/", index, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route("/index.html", index, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_api_route(
        "/assets/{name:path}", asset, methods=["GET", "HEAD"], include_in_schema=False
    )
