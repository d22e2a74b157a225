"""Python sources: a generator function in the project yields dicts or Arrow batches, which are
written to one Parquet file — the raw landing and bronze's input — and committed as one batch."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lagoa.core.config import PythonSource
from lagoa.core.errors import ConfigError, SourceError
from lagoa.sources.context import SourceContext
from lagoa.sources.http import FetchResult

CHUNK = 50_000
"""Dicts turned into an Arrow table at a time."""


def load_function(name: str, config: PythonSource, project_dir: Path) -> Callable[..., Iterable[Any]]:
    """The function ``config.function`` names, imported from the project folder."""
    module_name, function_name = config.function.split(":")
    try:
        if module_name.endswith(".py"):
            path = project_dir / module_name
            spec = importlib.util.spec_from_file_location(f"lagoa_source_{name}", path)
            if spec is None or spec.loader is None or not path.is_file():
                raise FileNotFoundError(path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            if str(project_dir) not in sys.path:
                sys.path.insert(0, str(project_dir))
            module = importlib.import_module(module_name)
    except (ImportError, FileNotFoundError) as exc:
        raise ConfigError(
            f"source `{name}`: cannot import `{module_name}` ({exc.__class__.__name__}: {exc})",
            hint=f"check `sources.{name}.function`; paths are relative to {project_dir}",
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigError(f"source `{name}`: `{module_name}` has no function `{function_name}`")
    return function  # type: ignore[no-any-return]


def fetch(
    name: str, config: PythonSource, project_dir: Path, target: Path, context: SourceContext
) -> FetchResult:
    """Run the generator to the end into ``target`` (Parquet). Anything it raises fails the fetch:
    nothing is committed and the watermark stays where it was."""
    function = load_function(name, config, project_dir)
    result = FetchResult(urls=[config.function])
    tables: list[pa.Table] = []
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        if pending:
            tables.append(pa.Table.from_pylist(pending))
            pending.clear()

    try:
        for item in function(context, **config.options):
            if isinstance(item, dict):
                pending.append(item)
                if len(pending) >= CHUNK:
                    flush()
                continue
            flush()
            if isinstance(item, pa.RecordBatch):
                tables.append(pa.Table.from_batches([item]))
            elif isinstance(item, pa.Table):
                tables.append(item)
            else:
                raise SourceError(
                    name, f"`{config.function}` yielded a {type(item).__name__}; yield dicts or Arrow batches"
                )
        flush()
    except SourceError:
        raise
    except Exception as exc:  # the user's code failed: say where, keep the run's state untouched
        # A connection that dropped or timed out may work on the next attempt; a bug will not.
        transient = isinstance(exc, ConnectionError | TimeoutError)
        raise SourceError(
            name, f"`{config.function}` raised {exc.__class__.__name__}: {exc}", transient=transient
        ) from exc
    tables = [t for t in tables if t.num_rows]
    result.pages = len(tables)
    if tables:
        combined = pa.concat_tables(tables, promote_options="permissive")
        pq.write_table(combined, target)
        result.records = combined.num_rows
    return result
