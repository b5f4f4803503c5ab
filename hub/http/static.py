"""The built frontend (frontend/dist) at /, with index.html for client-side routes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

from aiohttp import web

from hub.http.view import ApiError, Route

KEY_DIST: Final[web.AppKey[Path]] = web.AppKey("dist", Path)
DIST: Final = Path(__file__).resolve().parents[2] / "frontend" / "dist"
# Vite puts content-hashed files under assets/: they never change, cache them for a year.
IMMUTABLE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"

NOT_BUILT: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>evhub: frontend not built</title></head>
<body><h1>The evhub web interface is not built</h1>
<p>The API runs (try <a href="/api/health">/api/health</a>), but there is no
<code>frontend/dist/</code> to serve. Build it with
<code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code> and reload this page.</p>
</body></html>
"""


def _resolve(dist: Path, tail: str) -> tuple[bool, Path | None]:
    """Whether index.html exists, and the file a path names (blocking: file system)."""
    dist = dist.resolve()
    if not (dist / "index.html").is_file():
        return False, None
    if not tail:
        return True, None
    try:
        candidate = (dist / tail).resolve()
        if not candidate.is_relative_to(dist) or not candidate.is_file():
            return True, None
    except (OSError, ValueError):
        # A name too long for the file system, or one it cannot encode: no such file.
        return True, None
    return True, candidate


async def frontend(request: web.Request) -> web.StreamResponse:
    """A file of the built frontend, or index.html for any other path (SPA routing)."""
    tail = request.match_info.get("tail", "")
    if tail == "api" or tail.startswith("api/"):
        raise ApiError(404, "no_endpoint", f"no API endpoint {request.method} {request.path}")
    dist = request.app[KEY_DIST]
    loop = asyncio.get_running_loop()
    built, found = await loop.run_in_executor(None, _resolve, dist, tail)
    if not built:
        return web.Response(status=503, text=NOT_BUILT, content_type="text/html")
    if found is None:
        return web.FileResponse(dist / "index.html", headers={"Cache-Control": REVALIDATE})
    immutable = found.relative_to(dist.resolve()).parts[0] == "assets"
    return web.FileResponse(
        found, headers={"Cache-Control": IMMUTABLE if immutable else REVALIDATE}
    )


ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/{tail:.*}",
        frontend,
        None,
        "The web interface",
        tag="frontend",
        # A file of the built frontend (index.html for a client-side route); 503 with a page
        # saying how to build it when it is not built.
        responses={
            "200": {"text/html": {"type": "string"}, "*/*": {}},
            "503": {"text/html": {"type": "string"}},
        },
    ),
)
