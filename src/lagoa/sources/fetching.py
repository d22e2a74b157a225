"""Fetching HTTP and Python sources, one by one or several at once.

A fetch writes what the source returned to a staging file; loading it into bronze comes after.
Several sources of one ingest are fetched concurrently (``orchestration.max_fetches`` at once)
while the earlier ones load, so a slow API does not hold up the others.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lagoa.core.config import HttpSource, PythonSource
from lagoa.core.time import Interval
from lagoa.sources.http import FetchResult
from lagoa.sources.readers import READERS, Reader, read_pages

if TYPE_CHECKING:
    from lagoa.workspace import Workspace


@dataclass(frozen=True)
class Fetched:
    target: Path
    """The staging file: JSON lines of pages, or Parquet; deleted once loaded."""
    result: FetchResult
    reader: Reader


def fetch_source(
    workspace: Workspace,
    name: str,
    config: HttpSource | PythonSource,
    *,
    run_id: str,
    interval: Interval | None,
) -> Fetched:
    """Fetch from the committed watermark (minus the look-back) into a staging file."""
    from lagoa.core.names import CURSOR
    from lagoa.sources import http, python
    from lagoa.sources.context import SourceContext, request_watermark

    committed = workspace.lake.latest(workspace.lake.table(f"bronze.{name}"), CURSOR)
    context = SourceContext(interval, request_watermark(config.incremental, committed))
    folder = workspace.root / ".lagoa" / "fetch" / name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{run_id}.{'jsonl' if isinstance(config, HttpSource) else 'parquet'}"
    try:
        if isinstance(config, HttpSource):
            fetched = http.fetch(name, config, target, context, redactor=workspace.redactor)
            return Fetched(target, fetched, read_pages(config.records))
        return Fetched(
            target, python.fetch(name, config, workspace.root, target, context), READERS["parquet"]
        )
    except BaseException:
        target.unlink(missing_ok=True)
        raise


class Prefetch:
    """Fetches started ahead for the fetchable sources among ``names``; use as a context manager,
    which removes the staging files of fetches nobody loaded."""

    def __init__(
        self,
        workspace: Workspace,
        names: list[str],
        *,
        run_id: str,
        interval: Interval | None = None,
    ) -> None:
        sources = workspace.config.sources
        fetchable = [n for n in names if isinstance(sources[n], HttpSource | PythonSource)]
        self.futures: dict[str, Future[Fetched]] = {}
        self._pool = None
        if len(fetchable) > 1:
            self._pool = ThreadPoolExecutor(
                max_workers=workspace.config.orchestration.max_fetches, thread_name_prefix="lagoa-fetch"
            )
            for name in fetchable:
                config = sources[name]
                assert isinstance(config, HttpSource | PythonSource)
                # In a copy of this context: what a fetch logs (its retries) is its task's log.
                self.futures[name] = self._pool.submit(
                    contextvars.copy_context().run,
                    fetch_source, workspace, name, config, run_id=run_id, interval=interval,
                )  # fmt: skip

    def take(self, name: str) -> Future[Fetched] | None:
        return self.futures.pop(name, None)

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc: object) -> None:
        for future in self.futures.values():
            future.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for future in self.futures.values():
            if future.done() and not future.cancelled() and future.exception() is None:
                future.result().target.unlink(missing_ok=True)
