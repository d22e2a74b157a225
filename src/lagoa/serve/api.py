"""The JSON API, under ``/api`` (OpenAPI at ``/api/openapi.json``): every page's data.

Identifiers in paths are checked against the forms Lagoa gives them before anything is read, so a
path never reaches the catalog, the state or the storage unless it could name something there.
POSTs need the CSRF token (``X-CSRF-Token``) unless the request carries the access token itself.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from lagoa.core.errors import ConfigError
from lagoa.publish.docs import DOCS
from lagoa.serve import lineage, quality, runs, tables
from lagoa.serve.console import MAX_PAGE_ROWS, PAGE_ROWS, Page, QueryFailedError, RefusedError
from lagoa.serve.context import RUN_ID, TABLE_ID, TASK, Served, named

RunState = Annotated[str | None, Query(pattern=r"^(running|succeeded|failed|cancelled)$")]


class QueryRequest(BaseModel):
    sql: str = Field(min_length=1, max_length=100_000, description="One SELECT statement.")
    page: int = Field(default=0, ge=0, le=1_000_000)
    page_size: int = Field(default=PAGE_ROWS, ge=1, le=MAX_PAGE_ROWS)


class Problem(BaseModel):
    detail: str
    refused: bool = False


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such thing"}}
CSRF: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "No CSRF token (X-CSRF-Token), or a cross-site request"}
}


def _table(identifier: str) -> str:
    if not named(TABLE_ID, identifier):
        raise HTTPException(404, f"no table {identifier!r}: tables are named namespace.table")
    return identifier


def _run(run_id: str) -> str:
    if not named(RUN_ID, run_id):
        raise HTTPException(404, f"no run {run_id!r}")
    return run_id


def _found(value: dict[str, Any] | None, what: str) -> dict[str, Any]:
    if value is None:
        raise HTTPException(404, f"no {what}")
    return value


def router(served: Served) -> APIRouter:
    api = APIRouter(
        prefix="/api",
        responses={
            401: {"model": Problem, "description": "A token is required (the server was started with one)"},
            421: {"model": Problem, "description": "The request was addressed to another host"},
        },
    )
    project = served.project

    @api.get("/overview", tags=["overview"], summary="Pipelines' status, run durations, rows landed per day")
    def overview() -> dict[str, Any]:
        return served.overview()

    @api.get("/runs", tags=["runs"], summary="Runs, newest first, filtered and paged")
    def list_runs(
        pipeline: Annotated[str | None, Query(max_length=200)] = None,
        state: RunState = None,
        since: Annotated[datetime | None, Query(description="Runs whose interval ends after this")] = None,
        until: Annotated[datetime | None, Query(description="Runs whose interval starts before this")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> dict[str, Any]:
        return runs.list_runs(
            project, pipeline=pipeline, state=state, since=since, until=until, limit=limit, offset=offset
        )

    @api.get(
        "/runs/{run_id}",
        tags=["runs"],
        responses=NOT_FOUND,
        summary="A run with every task attempt (and dbt models)",
    )
    def run(run_id: str) -> dict[str, Any]:
        return _found(runs.run_detail(project, _run(run_id)), f"run {run_id}")

    @api.get(
        "/runs/{run_id}/attempts/{task}/{attempt}/log",
        tags=["runs"],
        responses=NOT_FOUND,
        summary="An attempt's log so far",
    )
    def attempt_log(
        run_id: str, task: str, attempt: Annotated[int, Path(ge=0, le=1_000_000)]
    ) -> dict[str, Any]:
        if not named(TASK, task):
            raise HTTPException(404, f"no task {task!r}")
        found = runs.attempt_log(project, _run(run_id), task, attempt)
        return _found(found, f"attempt {attempt} of {task} in run {run_id}")

    @api.post(
        "/runs/{run_id}/retry",
        tags=["runs"],
        status_code=202,
        summary="Run the run's failed, skipped and cancelled tasks again (lagoa run retry)",
        responses={**NOT_FOUND, **CSRF, 409: {"model": Problem}},
    )
    def retry(run_id: str) -> dict[str, Any]:
        try:
            return runs.start_retry(project, _run(run_id))
        except LookupError:
            raise HTTPException(404, f"no run {run_id}") from None
        except ConfigError as exc:
            raise HTTPException(409, exc.message) from None

    @api.get("/tables", tags=["tables"], summary="Every table of the lake")
    def list_tables() -> dict[str, Any]:
        found = tables.summaries(served.tables)
        return {"tables": [t.__dict__ for t in found]}

    @api.get(
        "/tables/{identifier}",
        tags=["tables"],
        responses=NOT_FOUND,
        summary="Schema, partitioning, sort order, snapshots",
    )
    def table(identifier: str) -> dict[str, Any]:
        return _found(tables.detail(served.tables, _table(identifier)), f"table {identifier}")

    @api.get(
        "/tables/{identifier}/files",
        tags=["tables"],
        responses=NOT_FOUND,
        summary="The current snapshot's data files",
    )
    def table_files(
        identifier: str, limit: Annotated[int, Query(ge=1, le=tables.MAX_ROWS)] = tables.MAX_ROWS
    ) -> dict[str, Any]:
        return _found(tables.files(served.tables, _table(identifier), limit), f"table {identifier}")

    @api.get(
        "/tables/{identifier}/preview", tags=["tables"], responses=NOT_FOUND, summary="The table's first rows"
    )
    def table_preview(
        identifier: str, limit: Annotated[int, Query(ge=1, le=tables.MAX_ROWS)] = tables.PREVIEW_ROWS
    ) -> dict[str, Any]:
        return _found(tables.preview(served.tables, _table(identifier), limit), f"table {identifier}")

    @api.get(
        "/tables/{identifier}/quarantine",
        tags=["tables"],
        responses=NOT_FOUND,
        summary="Quarantined rows, by reason",
    )
    def table_quarantine(
        identifier: str,
        reason: Annotated[str | None, Query(max_length=2000)] = None,
        limit: Annotated[int, Query(ge=1, le=tables.MAX_ROWS)] = tables.PREVIEW_ROWS,
    ) -> dict[str, Any]:
        found = tables.quarantine(served.tables, _table(identifier), reason, limit)
        return _found(found, f"table {identifier}")

    @api.get(
        "/quality",
        tags=["quality"],
        responses=NOT_FOUND,
        summary="A run's validation results (default: the latest)",
    )
    def quality_results(
        run_id: Annotated[str | None, Query(pattern=RUN_ID.pattern)] = None,
    ) -> dict[str, Any]:
        if run_id is not None:
            _run(run_id)
        return quality.run_results(project, served.results, run_id)

    @api.get(
        "/quality/tables/{identifier}",
        tags=["quality"],
        summary="A table's results over its latest runs",
        responses=NOT_FOUND,
    )
    def quality_history(identifier: str, last: Annotated[int, Query(ge=1, le=200)] = 30) -> dict[str, Any]:
        found = quality.table_history(project, served.results, _table(identifier), last)
        if not found["history"] and identifier not in served.tables.locations():
            raise HTTPException(404, f"no table {identifier} (and no validation of one)")
        return found

    @api.get(
        "/lineage",
        tags=["lineage"],
        responses=NOT_FOUND,
        summary="The lineage graph, laid out; around one node with focus",
    )
    def lineage_graph(
        focus: Annotated[str | None, Query(max_length=300)] = None,
        up: Annotated[int, Query(ge=0, le=50)] = 2,
        down: Annotated[int, Query(ge=0, le=50)] = 2,
    ) -> dict[str, Any]:
        graph = lineage.project_graph(project, list(served.tables.locations()))
        if focus is not None:
            if focus not in graph.nodes:
                raise HTTPException(404, f"no node {focus!r} in the lineage graph")
            graph = lineage.focus(graph, focus, up, down)
        return lineage.drawn(graph, focus)

    @api.get(
        "/lineage/columns/{identifier}",
        tags=["lineage"],
        responses=NOT_FOUND,
        summary="A table's column lineage",
    )
    def column_lineage(identifier: str) -> dict[str, Any]:
        found = served.columns.of(_table(identifier))
        if not found["columns"] and identifier not in served.tables.locations():
            raise HTTPException(404, f"no table {identifier} (and no lineage of one)")
        return found

    @api.post(
        "/query",
        tags=["query"],
        summary="Run one read-only SELECT over the warehouse; one page of rows",
        responses={**CSRF, 400: {"model": Problem}},
    )
    def query(request: QueryRequest) -> Page:
        try:
            page = served.console.page(request.sql, request.page, request.page_size)
        except RefusedError as exc:
            raise HTTPException(400, {"detail": f"refused: {exc.message}", "refused": True}) from None
        except QueryFailedError as exc:
            raise HTTPException(400, {"detail": exc.message, "refused": False}) from None
        return page

    @api.post(
        "/query.csv",
        tags=["query"],
        summary="Every row of one read-only SELECT, as CSV",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}}}, **CSRF, 400: {"model": Problem}},
    )
    async def query_csv(
        request: Request, sql: Annotated[str | None, Body(embed=True, max_length=100_000)] = None
    ) -> StreamingResponse:
        if sql is None:  # the page's download button posts a form
            form = await request.form()
            given = form.get("sql")
            sql = given if isinstance(given, str) else None
        if not sql:
            raise HTTPException(400, {"detail": "nothing to run: the query is empty", "refused": False})
        try:  # in a thread: the query may run for QUERY_SECONDS, the server answers others meanwhile
            lines = await run_in_threadpool(served.console.stream_csv, sql)
        except RefusedError as exc:
            raise HTTPException(400, {"detail": f"refused: {exc.message}", "refused": True}) from None
        except QueryFailedError as exc:
            raise HTTPException(400, {"detail": exc.message, "refused": False}) from None
        name = re.sub(r"[^A-Za-z0-9_]+", "_", sql.split()[-1])[:40] or "query"
        return StreamingResponse(
            lines,
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )

    @api.get("/docs", tags=["docs"], summary="Where the published dbt docs site is")
    def docs() -> dict[str, Any]:
        published = f"{DOCS}/index.html" in project.storage.list(f"{DOCS}/")
        return {"published": published, "url": "/docs-site/index.html" if published else None}

    return api
