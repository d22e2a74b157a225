"""Iceberg data-file entries from the statistics DuckDB returns for the Parquet files it writes.

``COPY … (RETURN_STATS true)`` reports each file's rows, size and, per column, its size, value
and null counts and min/max. That is everything a manifest entry holds, so a commit of files
DuckDB wrote reads no footer back and never imports pyiceberg's pyarrow reader (pyarrow and
pandas: ~0.8 s in every process that commits). Bounds follow Iceberg's default metrics mode,
``truncate(16)``; a table with other metrics settings, a file written elsewhere, or a value this
module cannot read back falls to pyiceberg's footer reader instead (see :meth:`Lake.commit`).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyiceberg.manifest import DataFile
    from pyiceberg.table.metadata import TableMetadata
    from pyiceberg.types import PrimitiveType

TRUNCATE = 16
"""Characters kept of a string bound: Iceberg's default metrics mode, ``truncate(16)``."""
METRICS_PREFIX = "write.metadata.metrics."


@dataclass(frozen=True)
class FileStats:
    """What DuckDB said of one file it wrote."""

    rows: int
    size: int
    columns: dict[str, dict[str, str]]
    """``column_statistics``: per column (quoted, as DuckDB names it) ``min``, ``max``,
    ``null_count``, ``num_values``, ``column_size_bytes``, ``has_nan``."""


_WRITTEN: dict[str, FileStats] = {}
_LOCK = threading.Lock()


def remember(path: str, stats: FileStats) -> None:
    """Keep a written file's statistics for the commit that adds it."""
    with _LOCK:
        _WRITTEN[path] = stats


def take(path: str) -> FileStats | None:
    """A written file's statistics, forgotten as they are taken (a commit adds a file once)."""
    with _LOCK:
        return _WRITTEN.pop(path, None)


def forget(paths: list[str]) -> None:
    """Drop what was kept of files that will not be committed (their block failed)."""
    with _LOCK:
        for path in paths:
            _WRITTEN.pop(path, None)


@dataclass(frozen=True)
class _Bounds:
    """One column's min and max, in the shape pyiceberg's DataFileStatistics reads them."""

    field_type: PrimitiveType
    current_min: Any
    current_max: Any

    def min_as_bytes(self) -> bytes | None:
        from pyiceberg.conversions import to_bytes

        if isinstance(self.current_min, str):
            return to_bytes(self.field_type, self.current_min[:TRUNCATE])
        return to_bytes(self.field_type, self.current_min)

    def max_as_bytes(self) -> bytes | None:
        from pyiceberg.conversions import to_bytes

        if isinstance(self.current_max, str):
            upper = _upper(self.current_max)
            return None if upper is None else to_bytes(self.field_type, upper)
        return to_bytes(self.field_type, self.current_max)


def _upper(text: str) -> str | None:
    """An upper bound of ``text`` at most ``TRUNCATE`` characters long: its prefix with the last
    character that can be incremented, incremented (None if none can)."""
    if len(text) <= TRUNCATE:
        return text
    prefix = text[:TRUNCATE]
    for index in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[index]) + 1
        if 0xD800 <= code <= 0xDFFF:
            code = 0xE000
        if code <= 0x10FFFF:
            return prefix[:index] + chr(code)
    return None


def _value(field_type: PrimitiveType, text: str) -> Any:
    """DuckDB's printed statistic as the Python value pyiceberg serialises (ValueError if not)."""
    from pyiceberg import types as t

    if isinstance(field_type, t.BooleanType):
        return {"0": False, "1": True, "false": False, "true": True}[text.lower()]
    if isinstance(field_type, t.IntegerType | t.LongType):
        return int(text)
    if isinstance(field_type, t.FloatType | t.DoubleType):
        return float(text)
    if isinstance(field_type, t.DecimalType):
        return Decimal(text)
    if isinstance(field_type, t.StringType):
        return text
    if isinstance(field_type, t.DateType):
        return date.fromisoformat(text)
    if isinstance(field_type, t.TimeType):
        return time.fromisoformat(text)
    if isinstance(field_type, t.TimestampType):
        return datetime.fromisoformat(text)
    if isinstance(field_type, t.TimestamptzType):
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            raise ValueError(f"no time zone in {text!r}")
        return moment
    if isinstance(field_type, t.UUIDType):
        return uuid.UUID(text)
    raise ValueError(f"no bounds kept for {field_type}")


def _column_name(key: str) -> str | None:
    """The top-level column DuckDB's quoted key names (None for a nested field's)."""
    if len(key) < 2 or not (key.startswith('"') and key.endswith('"')):
        return None
    inner = key[1:-1]
    if '"."' in inner:
        return None
    return inner.replace('""', '"')


def data_file(metadata: TableMetadata, path: str, stats: FileStats) -> DataFile | None:
    """The manifest entry of a file DuckDB wrote for the table, or None when the table's
    metrics settings or the file's columns ask for pyiceberg's own reading of its footer."""
    from pyiceberg.io.fileformat import DataFileStatistics
    from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
    from pyiceberg.types import PrimitiveType

    if any(key.startswith(METRICS_PREFIX) for key in metadata.properties):
        return None
    schema = metadata.schema()
    fields = {field.name: field for field in schema.fields}
    sizes, values, nulls = {}, {}, {}
    bounds: dict[int, Any] = {}
    for key, column in stats.columns.items():
        name = _column_name(key)
        field = fields.get(name) if name is not None else None
        if field is None:
            if name is not None:
                return None  # a column the table does not know: let pyiceberg's check say so
            continue  # a nested field's leaf: its counts are keyed by leaf ids, left out
        if not isinstance(field.field_type, PrimitiveType):
            continue
        try:
            sizes[field.field_id] = int(column["column_size_bytes"])
            values[field.field_id] = int(column["num_values"])
            nulls[field.field_id] = int(column["null_count"])
            if "min" in column and "max" in column and column.get("has_nan") != "true":
                bounds[field.field_id] = _Bounds(
                    field.field_type,
                    _value(field.field_type, column["min"]),
                    _value(field.field_type, column["max"]),
                )
        except (KeyError, ValueError, ArithmeticError):
            bounds.pop(field.field_id, None)  # no bounds rather than wrong ones
    statistics = DataFileStatistics(
        record_count=stats.rows,
        column_sizes=sizes,
        value_counts=values,
        null_value_counts=nulls,
        nan_value_counts={},
        column_aggregates=bounds,  # _Bounds has the attributes and methods it reads
        split_offsets=None,  # type: ignore[arg-type]  # unknown; an empty list would say "no splits"
    )
    try:
        partition = statistics.partition(metadata.spec(), schema)
    except ValueError:
        return None  # more than one partition value in the file: pyiceberg's reading says so
    return DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=partition,
        file_size_in_bytes=stats.size,
        sort_order_id=None,
        spec_id=metadata.default_spec_id,
        equality_ids=None,
        key_metadata=None,
        **statistics.to_serialized_dict(),
    )
