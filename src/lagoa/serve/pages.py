"""The server-rendered pages: each reads what its API endpoint returns and renders a template.

Pages work without scripts (forms post to their own routes, which check the CSRF field); the
vendored scripts add charts, the SQL editor, and the live refresh of a running run.
"""

from __future__ import annotations

import json
import mimetypes
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from lagoa.core.errors import ConfigError
from lagoa.publish.docs import DOCS
from lagoa.serve import lineage, quality, runs, tables
from lagoa.serve.console import PAGE_ROWS, QueryFailedError, RefusedError
from lagoa.serve.context import RUN_ID, TABLE_ID, Served, named
from lagoa.serve.security import CSRF_FIELD, SESSION_COOKIE

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
DOCS_PATH = re.compile(r"^[A-Za-z0-9_\-./]{1,300}$")
GANTT_WIDTH = 1000
GANTT_ROW = 22
GANTT_LABEL = 260
GANTT_LABEL_CHARS = 36
"""A bar's label longer than this is cut (its whole text is in the bar's tooltip)."""
RETRY_WAIT_SECONDS = 120
"""How long a run's page keeps refreshing after a retry was asked for, waiting for it to start."""


def _human_seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _tick(value: float, span: float) -> str:
    """A time axis label, as precise as the axis' span needs."""
    if span < 1:
        return f"{value * 1000:.0f}ms"
    if span < 10:
        return f"{value:.1f}s"
    if span < 120:
        return f"{value:.0f}s"
    return _human_seconds(value)


def _cut(label: str) -> str:
    return label if len(label) <= GANTT_LABEL_CHARS else label[: GANTT_LABEL_CHARS - 1] + "…"


def _short_time(value: str | None) -> str:
    if not value:
        return "–"
    return value.replace("T", " ")[:19]


def _human_bytes(value: int | None) -> str:
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{value} B"


TEMPLATES.env.filters["seconds"] = _human_seconds
TEMPLATES.env.filters["when"] = _short_time
TEMPLATES.env.filters["bytes"] = _human_bytes
TEMPLATES.env.filters["tojson_pretty"] = lambda value: json.dumps(value, indent=2, default=str)


def _render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    served: Served = request.app.state.served
    context.setdefault("title", name.removesuffix(".html").replace("_", " ").title())
    return TEMPLATES.TemplateResponse(
        request,
        name,
        {
            "project": served.project.config.name,
            "csrf_token": served.guard.csrf(),
            "csrf_field": CSRF_FIELD,
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return _render(request, "error.html", status_code=status, status=status, message=message, title="Error")


def _gantt(run: dict[str, Any]) -> dict[str, Any]:
    """Bars of the run's attempts (and the dbt nodes inside transform attempts) on one time axis."""
    start = datetime.fromisoformat(run["timeline"]["start"])
    end = datetime.fromisoformat(run["timeline"]["end"])
    span = max((end - start).total_seconds(), 0.001)
    scale = (GANTT_WIDTH - GANTT_LABEL) / span
    now = datetime.fromisoformat(run["ended_at"]) if run["ended_at"] else end
    bars = []
    for attempt in run["attempts"]:
        if attempt["attempt"] == 0:
            continue
        began = datetime.fromisoformat(attempt["started_at"])
        ended = datetime.fromisoformat(attempt["ended_at"]) if attempt["ended_at"] else now
        label = f"{attempt['task']} #{attempt['attempt']}"
        bars.append(
            {
                "label": label,
                "text": _cut(label),
                "state": attempt["state"],
                "x": GANTT_LABEL + (began - start).total_seconds() * scale,
                "width": max((ended - began).total_seconds() * scale, 2),
                "seconds": attempt["seconds"],
                "nested": False,
            }
        )
        for node in attempt.get("dbt", []):
            if not node["started_at"]:
                continue
            node_start = datetime.fromisoformat(node["started_at"])
            label = f"{node['kind']} {node['name']}"
            bars.append(
                {
                    "label": label,
                    "text": _cut(label),
                    "state": "succeeded" if node["status"] in ("success", "pass") else "failed",
                    "x": GANTT_LABEL + max((node_start - start).total_seconds(), 0) * scale,
                    "width": max(node["seconds"] * scale, 2),
                    "seconds": node["seconds"],
                    "nested": True,
                }
            )
    for i, bar in enumerate(bars):
        bar["y"] = i * GANTT_ROW
    return {
        "bars": bars,
        "width": GANTT_WIDTH,
        "height": max(len(bars), 1) * GANTT_ROW + 24,
        "label": GANTT_LABEL,
        "span": span,
        "ticks": [
            {
                "x": GANTT_LABEL + f * (GANTT_WIDTH - GANTT_LABEL),
                "text": _tick(span * f, span),
                "anchor": "end" if f == 1 else "middle",
            }
            for f in (0, 0.25, 0.5, 0.75, 1)
        ],
    }


def router(served: Served) -> APIRouter:
    pages = APIRouter(include_in_schema=False)
    project = served.project

    @pages.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> Response:
        data = served.overview()
        return _render(request, "overview.html", title="Overview", data=data)

    @pages.get("/runs", response_class=HTMLResponse)
    def run_list(
        request: Request,
        pipeline: Annotated[str | None, Query(max_length=200)] = None,
        state: Annotated[str | None, Query(max_length=20)] = None,
        since: Annotated[str | None, Query(max_length=40)] = None,
        until: Annotated[str | None, Query(max_length=40)] = None,
        page: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> Response:
        limit = 50
        found = runs.list_runs(
            project,
            pipeline=pipeline or None,
            state=state or None,
            since=_date(since),
            until=_date(until),
            limit=limit,
            offset=page * limit,
        )
        query = {
            k: v
            for k, v in {"pipeline": pipeline, "state": state, "since": since, "until": until}.items()
            if v
        }
        return _render(
            request,
            "runs.html",
            title="Runs",
            data=found,
            filters=query,
            page=page,
            pages=max((found["total"] + limit - 1) // limit, 1),
            link=lambda p: "/runs?" + urlencode({**query, "page": p}),
            states=runs.RUN_STATES,
        )

    def run_context(request: Request, run_id: str) -> dict[str, Any]:
        if not named(RUN_ID, run_id):
            raise HTTPException(404, f"no run {run_id}")
        found = runs.run_detail(project, run_id, logs=True)
        if found is None:
            raise HTTPException(404, f"no run {run_id}")
        retried = _retried(request.query_params.get("retried"))
        return {
            "run": found,
            "gantt": _gantt(found),
            "retried": retried,
            "refresh": found["state"] == "running" or _retry_pending(found, retried),
        }

    @pages.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> Response:
        return _render(request, "run.html", title=f"Run {run_id}", **run_context(request, run_id))

    @pages.get("/runs/{run_id}/live", response_class=HTMLResponse)
    def run_live(request: Request, run_id: str) -> Response:
        return _render(request, "run_live.html", **run_context(request, run_id))

    @pages.post("/runs/{run_id}/retry")
    def retry(run_id: str, csrf_token: Annotated[str, Form()] = "") -> Response:
        if not served.guard.csrf_ok(csrf_token):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
        if not named(RUN_ID, run_id):
            raise HTTPException(404, f"no run {run_id}")
        try:
            runs.start_retry(project, run_id)
        except LookupError:
            raise HTTPException(404, f"no run {run_id}") from None
        except ConfigError as exc:
            raise HTTPException(409, exc.message) from None
        asked = int(time.time() * 1000)  # the page refreshes itself until the retry has started
        return RedirectResponse(f"/runs/{run_id}?retried={asked}", status_code=303)

    @pages.get("/tables", response_class=HTMLResponse)
    def table_list(request: Request) -> Response:
        found = tables.summaries(served.tables)
        return _render(request, "tables.html", title="Tables", tables=found)

    @pages.get("/tables/{identifier}", response_class=HTMLResponse)
    def table_page(
        request: Request,
        identifier: str,
        reason: Annotated[str | None, Query(max_length=2000)] = None,
    ) -> Response:
        if not named(TABLE_ID, identifier):
            raise HTTPException(404, f"no table {identifier}")
        found = tables.detail(served.tables, identifier)
        if found is None:
            raise HTTPException(404, f"no table {identifier}")
        return _render(
            request,
            "table.html",
            title=identifier,
            table=found,
            files=tables.files(served.tables, identifier, 100),
            preview=tables.preview(served.tables, identifier, 20),
            quarantine=tables.quarantine(served.tables, identifier, reason or None, 50),
        )

    @pages.get("/quality", response_class=HTMLResponse)
    def quality_page(
        request: Request, run_id: Annotated[str | None, Query(max_length=64)] = None
    ) -> Response:
        if run_id is not None and not named(RUN_ID, run_id):
            raise HTTPException(404, f"no run {run_id}")
        found = quality.run_results(project, served.results, run_id or None)
        return _render(request, "quality.html", title="Quality", data=found)

    @pages.get("/quality/tables/{identifier}", response_class=HTMLResponse)
    def quality_table(request: Request, identifier: str) -> Response:
        if not named(TABLE_ID, identifier):
            raise HTTPException(404, f"no table {identifier}")
        found = quality.table_history(project, served.results, identifier)
        labels = sorted({e["expectation"] for v in found["history"] for e in v["expectations"]})
        return _render(
            request, "quality_table.html", title=f"Quality of {identifier}", data=found, labels=labels
        )

    @pages.get("/lineage", response_class=HTMLResponse)
    def lineage_page(
        request: Request,
        focus: Annotated[str | None, Query(max_length=300)] = None,
        up: Annotated[int, Query(ge=0, le=50)] = 2,
        down: Annotated[int, Query(ge=0, le=50)] = 2,
    ) -> Response:
        graph = lineage.project_graph(project, list(served.tables.locations()))
        total = len(graph.nodes)
        if focus:
            if focus not in graph.nodes:
                raise HTTPException(404, f"no node {focus} in the lineage graph")
            graph = lineage.focus(graph, focus, up, down)
        drawing = lineage.drawn(graph, focus or None)
        chosen = graph.nodes.get(focus) if focus else None
        return _render(
            request,
            "lineage.html",
            title="Lineage",
            graph=drawing,
            total=total,
            focus=focus,
            chosen=chosen,
            up=up,
            down=down,
            choices=sorted(graph.nodes) if focus else [],
        )

    @pages.get("/lineage/columns/{identifier}", response_class=HTMLResponse)
    def lineage_columns(request: Request, identifier: str) -> Response:
        if not named(TABLE_ID, identifier):
            raise HTTPException(404, f"no table {identifier}")
        return _render(request, "lineage_columns.html", data=served.columns.of(identifier))

    @pages.get("/query", response_class=HTMLResponse)
    def query_form(request: Request) -> Response:
        return _render(request, "query.html", title="Query", sql="", result=None, error=None)

    @pages.post("/query", response_class=HTMLResponse)
    def query_run(
        request: Request,
        sql: Annotated[str, Form(max_length=100_000)] = "",
        page: Annotated[int, Form(ge=0, le=1_000_000)] = 0,
        csrf_token: Annotated[str, Form()] = "",
    ) -> Response:
        if not served.guard.csrf_ok(csrf_token):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
        result, error, refused = None, None, False
        try:
            result = served.console.page(sql, page, PAGE_ROWS)
        except RefusedError as exc:
            error, refused = f"RefusedError: {exc.message}", True
        except QueryFailedError as exc:
            error = exc.message
        # A refused or failed query is shown on the form (200: the page itself is fine; the JSON
        # API answers 400), so a browser does not report the page as a failed load.
        return _render(
            request,
            "query.html",
            title="Query",
            sql=sql,
            result=result,
            error=error,
            refused=refused,
        )

    @pages.post("/query.csv")
    def query_csv(
        sql: Annotated[str, Form(max_length=100_000)] = "", csrf_token: Annotated[str, Form()] = ""
    ) -> Response:
        if not served.guard.csrf_ok(csrf_token):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
        try:
            lines = served.console.stream_csv(sql)
        except (RefusedError, QueryFailedError) as exc:
            raise HTTPException(400, exc.message) from None
        return StreamingResponse(
            lines, media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="query.csv"'}
        )

    @pages.get("/docs", response_class=HTMLResponse)
    def docs_page(request: Request) -> Response:
        published = f"{DOCS}/index.html" in project.storage.list(f"{DOCS}/")
        return _render(request, "docs.html", title="Docs", published=published)

    @pages.get("/docs-site/{path:path}")
    def docs_site(path: str) -> Response:
        if DOCS_PATH.fullmatch(path) is None or ".." in path.split("/"):
            raise HTTPException(404, "no such page of the docs site")
        data = project.storage.read_bytes(f"{DOCS}/{path}")
        if data is None:
            raise HTTPException(404, "no such page of the docs site: publish it with `lagoa docs`")
        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(data, media_type=kind)

    @pages.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: Annotated[str, Query(max_length=500)] = "/") -> Response:
        return _render(request, "login.html", title="Sign in", next=_local(next), error=None)

    @pages.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        token: Annotated[str, Form(max_length=1000)] = "",
        next: Annotated[str, Form(max_length=500)] = "/",
    ) -> Response:
        if not served.guard.login(token):
            return _render(
                request,
                "login.html",
                status_code=401,
                title="Sign in",
                next=_local(next),
                error="Wrong token.",
            )
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(SESSION_COOKIE, served.guard.session(), httponly=True, samesite="strict")
        return response

    return pages


def _retried(value: str | None) -> int | None:
    """When the retry was asked for (ms since the epoch), from the run page's ``retried``."""
    return int(value) if value is not None and value.isdigit() and len(value) < 16 else None


def _retry_pending(run: dict[str, Any], retried: int | None) -> bool:
    """Whether a retry was asked for and has not started yet (``lagoa run retry`` reopens the
    run: it is running, then ends after it was asked for)."""
    if retried is None or time.time() * 1000 - retried > RETRY_WAIT_SECONDS * 1000:
        return False
    ended = run["ended_at"]
    return ended is not None and datetime.fromisoformat(ended).timestamp() * 1000 < retried


def _date(value: str | None) -> datetime | None:
    """A filter's date or time (``2024-06-01``, ``2024-06-01T10:00``), UTC when no zone is given."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            422, f"not a date or time: {value!r} (use 2024-06-01 or 2024-06-01T10:00)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _local(target: str) -> str:
    """Only a path of this server (an open redirect would send a signed-in user anywhere)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"
