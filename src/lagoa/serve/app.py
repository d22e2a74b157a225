"""The FastAPI application of ``lagoa serve``: the JSON API, the pages, the vendored scripts, and
the checks every request passes first.

Before any handler runs:

- **host**: a server bound to loopback answers only requests addressed to a loopback name, so a
  web page cannot reach it through a DNS name rebound to 127.0.0.1;
- **access**: with a token (required off loopback), a request without it is refused (401 for the
  API, the login form for pages);
- **CSRF**: a POST to the API carries the CSRF token in ``X-CSRF-Token`` unless it carries the
  access token itself, and a POST whose ``Origin`` is another site is refused; the pages' forms
  carry the token as a field, which their handlers check.

Every response carries a Content-Security-Policy that allows only the server's own scripts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from lagoa.serve import api, pages
from lagoa.serve.context import Served
from lagoa.serve.security import CSRF_HEADER, SESSION_COOKIE, TOKEN_HEADER, Guard, is_loopback

if TYPE_CHECKING:
    from lagoa.orchestrate.project import Project

log = logging.getLogger("lagoa.serve")

HERE = Path(__file__).parent
OPEN_PATHS = ("/login", "/static/", "/favicon.ico")
"""Served without the token: the login form and the scripts and styles it needs."""
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
DOCS_CSP = "default-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:; frame-ancestors 'self'"
"""dbt's docs site is one page of inline scripts: it gets its own, looser policy."""


def create_app(project: Project, *, token: str | None = None, host: str = "127.0.0.1") -> FastAPI:
    """The application serving ``project``; ``host`` is the address it is bound to."""
    served = Served(project, Guard(token))
    app = FastAPI(
        title=f"Lagoa: {project.config.name}",
        description="Runs, tables, quality, lineage and a read-only SQL console of a Lagoa project.",
        version="1",
        openapi_url="/api/openapi.json",
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN: the server works offline
        redoc_url=None,
    )
    app.state.served = served
    loopback = is_loopback(host)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        refused = _refusal(request, served.guard, loopback)
        if refused is not None:
            return refused
        response = await call_next(request)
        docs = request.url.path.startswith("/docs-site/")
        response.headers["Content-Security-Policy"] = DOCS_CSP if docs else CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if not docs:
            response.headers["X-Frame-Options"] = "DENY"
        return response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            body = exc.detail if isinstance(exc.detail, dict) else {"detail": exc.detail}
            return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
        return pages.error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # The shape FastAPI documents for a 422 (``ValidationError``: loc, msg, type), without
        # the ``input`` it would echo back (a wrong token or SQL may be in it).
        problems = [
            {
                "loc": [str(part) for part in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": problems}, status_code=422)
        return pages.error_page(
            request, 422, "; ".join(f"{'.'.join(p['loc'])}: {p['msg']}" for p in problems)
        )

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> Response:
        message = project.workspace.redactor.text(f"{type(exc).__name__}: {exc}".splitlines()[0])
        log.error("%s %s failed: %s", request.method, request.url.path, message, exc_info=exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message}, status_code=500)
        return pages.error_page(request, 500, message)

    app.include_router(api.router(served))
    app.include_router(pages.router(served))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app


def _refusal(request: Request, guard: Guard, loopback: bool) -> Response | None:
    """The response refusing the request, or None when it may go on."""
    path = request.url.path
    host = _host_name(request.headers.get("host") or "127.0.0.1")
    if loopback and not is_loopback(host):
        return JSONResponse(
            {"detail": f"this server answers loopback names only, not {host!r}"}, status_code=421
        )
    authorization = request.headers.get("authorization") or ""
    bearer = authorization[7:] if authorization.lower().startswith("bearer ") else None
    header = request.headers.get(TOKEN_HEADER)
    explicit = guard.required and guard.allows(bearer=bearer, header=header, cookie=None)
    if (
        guard.required
        and not path.startswith(OPEN_PATHS)
        and not explicit
        and not guard.allows(bearer=None, header=None, cookie=request.cookies.get(SESSION_COOKIE))
    ):
        if path.startswith("/api/"):
            return JSONResponse(
                {"detail": "a token is required: send Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return RedirectResponse(f"/login?next={quote(path)}", status_code=303)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
        if path.startswith("/api/") and not explicit and not guard.csrf_ok(request.headers.get(CSRF_HEADER)):
            return JSONResponse({"detail": "missing or wrong CSRF token (X-CSRF-Token)"}, status_code=403)
    return None


def _host_name(header: str) -> str:
    """The name of a Host header, without its port (``[::1]:8080`` → ``::1``)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header
