"""Serves the web console: the built single-page app shipped inside the package (`astrago/web/`).

Hashed files under `assets/` never change, so browsers keep them for a year; `index.html` is revalidated
every time, so a new release is picked up on the next load. Any other path that is not the API's is a
route of the app (e.g. `/workloads/abc`) and gets `index.html`. Without built assets, `/` says how to
build them instead of failing."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

BUILT_CONSOLE = Path(__file__).resolve().parent.parent / "web"
IMMUTABLE = "public, max-age=31536000, immutable"
# Paths the API owns: an unknown one there is a JSON 404, never the app's page.
RESERVED_PREFIXES = ("api/", "docs", "redoc", "openapi.json", "metrics", "healthz", "readyz", "proxy/")

NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AstraGo: console not built</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:4rem auto;padding:0 1rem}}
code{{background:#f1f3f5;padding:.1rem .3rem;border-radius:4px}}</style></head>
<body><h1>The web console is not built</h1>
<p>This server runs, and its API answers at <a href="/docs">/docs</a>, but the console's files are
missing from <code>{path}</code>.</p>
<p>Build them from a checkout with <code>make web</code> (it needs Node.js 20 and npm; <code>make up</code>
and <code>make install</code> do it too), then reload this page.</p></body></html>
"""


class _ImmutableAssets(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = IMMUTABLE
        return response


def install_console(app: FastAPI, root: Path = BUILT_CONSOLE) -> None:
    """Register the console's routes; call it after the API's routers so theirs win."""
    index = root / "index.html"
    if (root / "assets").is_dir():
        app.mount("/assets", _ImmutableAssets(directory=root / "assets"), name="console-assets")
    router = APIRouter(include_in_schema=False)

    @router.get("/{path:path}", response_model=None)
    def console(path: str) -> Response:  # sync: file checks run in the thread pool, off the event loop
        if path.startswith(RESERVED_PREFIXES):
            raise HTTPException(404, f"no such path: /{path}")
        if not index.is_file():
            return HTMLResponse(NOT_BUILT_PAGE.format(path=escape(str(root))))
        candidate = (root / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(root.resolve()):
            return FileResponse(candidate, headers={"Cache-Control": "no-cache"})
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.include_router(router)
