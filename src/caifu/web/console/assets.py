"""The console's static files: its stylesheet and script, and the vendored ECharts and htmx
(``static/vendor``, from the npm registry, ``scripts/vendor_js.py``) — nothing from a CDN.
Public (the sign-in page needs them) and named one by one: no path is read from the request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Request, Response
from fastapi.responses import FileResponse

from caifu.web.console.pages import ASSETS, VERSIONS
from caifu.web.console.routing import console_router

router = console_router()


@router.get("/console/static/{name}", name="console_static")
def static(name: Annotated[str, PathParam(max_length=40)], request: Request) -> Response:
    if name not in ASSETS:
        return Response("not found", status_code=404, media_type="text/plain")
    folder, media = ASSETS[name]
    # a URL with the content's hash never changes meaning: cached for a year
    fresh = request.query_params.get("v") == VERSIONS[name]
    return FileResponse(folder / name, media_type=media, headers={
        "Cache-Control": "public, max-age=31536000, immutable" if fresh else "no-cache",
        "X-Content-Type-Options": "nosniff"})
