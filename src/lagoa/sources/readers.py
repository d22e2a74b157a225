"""Readers turn a file into a DuckDB relation of raw text columns, one reader per format.

CSV and JSON are read as text first and typed afterwards (see ``typing.py``), so a value that
does not parse becomes a quarantined row with a reason instead of failing the whole file.
Structural problems (a wrong column count, invalid UTF-8, an over-long line) are collected by
DuckDB's ``store_rejects`` and quarantined too. Parquet is already typed and is read as is.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import duckdb

from lagoa.core.config import CsvOptions, FileSource, TableSource
from lagoa.core.errors import SourceError
from lagoa.core.sql import quote_identifier, quote_literal
from lagoa.lake.schema import from_duckdb

JSON_LINE = "line"
SAMPLE_ROWS = 50_000
SNIFF_LINES = 20_480
"""Lines sniffed for a CSV dialect when DuckDB's own sniffer fails (its default sample size)."""
SKIP_CHUNK = 8 << 20
BYTE_ORDER_MARKS = (
    (b"\xff\xfe\x00\x00", "UTF-32LE"),
    (b"\x00\x00\xfe\xff", "UTF-32BE"),
    (b"\xff\xfe", "UTF-16LE"),
    (b"\xfe\xff", "UTF-16BE"),
)


@dataclass(frozen=True)
class RawColumn:
    """A column as found in the file: its name there, Lagoa's name for it, and a type when the
    format carries one (Parquet); text formats have ``type`` None and are inferred later."""

    source_name: str
    name: str
    type: str | None = None


@dataclass(frozen=True)
class RawRelation:
    """SQL for a file's rows: ``select`` gives one text (or typed) column per ``columns`` entry,
    ``error`` a structural error per row or NULL, ``raw`` the raw record for quarantine.

    ``from_clause`` reads the whole file and records DuckDB's rejected lines in ``rejects_table``;
    ``sample_clause`` reads it skipping those lines, for type inference."""

    columns: list[RawColumn]
    from_clause: str
    sample_clause: str
    select: dict[str, str]
    error: str
    raw: str
    rejects_table: str | None
    unreadable: str
    """How to describe a file DuckDB cannot read, e.g. "cannot be read as CSV"."""
    typed: bool = False


def normalise(name: str) -> str:
    """A column name usable everywhere (Iceberg, DuckDB, dbt, Athena): lower_snake_case."""
    cleaned = re.sub(r"[^0-9a-zA-Z]+", "_", name.strip()).strip("_").lower()
    if not cleaned:
        cleaned = "column"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        result.append(name if count == 0 else f"{name}_{count + 1}")
    return result


class Reader(Protocol):
    def __call__(
        self, con: duckdb.DuckDBPyConnection, source: str, config: TableSource, path: Path, tag: str
    ) -> RawRelation: ...


def csv_of(config: TableSource) -> CsvOptions:
    """A file source's CSV options; other kinds read with the defaults."""
    return config.csv if isinstance(config, FileSource) else CsvOptions()


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message


def _buffer_size(max_line_size: int) -> int:
    return max(max_line_size * 2, 32 << 20)


def _rejects(tag: str | None) -> str:
    """Store rejected lines under ``tag``, or (None) skip them, as a sample scan should."""
    if tag is None:
        return "ignore_errors=true"
    return f"store_rejects=true, rejects_table='rejects_{tag}', rejects_scan='rejects_scan_{tag}'"


def _csv_options(options: CsvOptions) -> str:
    parts = [
        "all_varchar=true",
        f"max_line_size={options.max_line_size}",
        f"buffer_size={_buffer_size(options.max_line_size)}",
        f"encoding={quote_literal(options.encoding)}",
    ]
    if options.delimiter is not None:
        parts.append(f"delim={quote_literal(options.delimiter)}")
    if options.header is not None:
        parts.append(f"header={str(options.header).lower()}")
    if options.quote is not None:
        parts.append(f"quote={quote_literal(options.quote)}")
    if options.escape is not None:
        parts.append(f"escape={quote_literal(options.escape)}")
    return ", ".join(parts)


def _columns(source_names: list[str], types: list[str | None] | None = None) -> list[RawColumn]:
    names = _unique([normalise(name) for name in source_names])
    return [
        RawColumn(src, name, kind)
        for src, name, kind in zip(source_names, names, types or [None] * len(names), strict=True)
    ]


def _record_json(select: dict[str, str]) -> str:
    """SQL for the whole record as JSON, kept with rows that fail to parse."""
    return (
        "to_json(struct_pack(" + ", ".join(f"{quote_identifier(n)} := {e}" for n, e in select.items()) + "))"
    )


def _unicode_kind(head: bytes) -> str | None:
    """The UTF-16 or UTF-32 flavour the first bytes of a file betray (a byte-order mark, or the
    NUL bytes that mostly-ASCII text has in those encodings), or None."""
    for mark, kind in BYTE_ORDER_MARKS:
        if head.startswith(mark):
            return kind
    if len(head) < 16 or b"\0" not in head:
        return None

    def nul_share(offset: int, step: int) -> float:
        every = head[offset::step]
        return every.count(0) / len(every)

    quarters = [nul_share(offset, 4) > 0.9 for offset in range(4)]
    if quarters == [False, True, True, True]:
        return "UTF-32LE"
    if quarters == [True, True, True, False]:
        return "UTF-32BE"
    if nul_share(1, 2) > 0.3 and nul_share(0, 2) < 0.05:
        return "UTF-16LE"
    if nul_share(0, 2) > 0.3 and nul_share(1, 2) < 0.05:
        return "UTF-16BE"
    return None


def check_encoding(source: str, path: Path, encoding: str, setting: str | None) -> None:
    """Refuse a UTF-16 or UTF-32 file that would be read as something else, naming the encoding
    (DuckDB would otherwise report a delimiter or a column it cannot find). ``setting`` is the
    option that may read it (``csv.encoding``), None when only UTF-8 is read."""
    with path.open("rb") as stream:
        kind = _unicode_kind(stream.read(4096))
    if kind is None or (kind == "UTF-16LE" and encoding == "utf-16" and setting is not None):
        return
    readable = kind == "UTF-16LE" and setting is not None
    raise SourceError(
        source,
        f"file `{path.name}` is {kind}, not {encoding}",
        hint=f"convert it to UTF-8 (e.g. `iconv -f {kind} -t UTF-8`)"
        + (f", or set `{setting}: utf-16`" if readable else ""),
    )


def _sample_without_long_lines(path: Path, max_line_size: int, out: IO[bytes]) -> bool:
    """Copy the file's first lines to ``out``, leaving out those over ``max_line_size`` bytes;
    True when some line was left out."""
    dropped = False
    kept = 0
    with path.open("rb") as stream:
        while kept < SNIFF_LINES:
            line = stream.readline(max_line_size + 1)
            if not line:
                break
            if len(line) > max_line_size and not line.endswith(b"\n"):
                dropped = True
                while (rest := stream.readline(SKIP_CHUNK)) and not rest.endswith(b"\n"):
                    pass
                continue
            out.write(line)
            kept += 1
    return dropped


def _sniffed_options(con: duckdb.DuckDBPyConnection, path: Path, options: CsvOptions) -> str | None:
    """CSV options with the dialect and columns fixed, sniffed from the file's first lines less
    the over-long ones (DuckDB's sniffer fails on a line over ``max_line_size`` anywhere in its
    sample, while a scan with a fixed dialect rejects just that line); None when no line was
    over-long, or the rest cannot be sniffed either."""
    with tempfile.NamedTemporaryFile(suffix=".csv") as sample:
        if not _sample_without_long_lines(path, options.max_line_size, sample):
            return None
        sample.flush()
        try:
            sniffed = con.execute(
                "SELECT Delimiter, Quote, Escape, Comment, SkipRows, HasHeader, Columns "
                f"FROM sniff_csv({quote_literal(sample.name)}, {_csv_options(options)})"
            ).fetchone()
        except duckdb.Error:
            return None
    if sniffed is None:
        return None
    delimiter, quote, escape, comment, skip, header, columns = sniffed

    def literal(value: str) -> str:
        return quote_literal("" if value == "(empty)" else value)

    # sniff_csv kept what lagoa.yml sets; only what it detected is added.
    sniffed_dialect = {
        "delim": None if options.delimiter is not None else literal(delimiter),
        "quote": None if options.quote is not None else literal(quote),
        "escape": None if options.escape is not None else literal(escape),
        "header": None if options.header is not None else str(bool(header)).lower(),
        "comment": literal(comment),
        "skip": str(int(skip)),
    }
    names = ", ".join(f"{quote_literal(c['name'])}: 'VARCHAR'" for c in columns)
    added = ", ".join(f"{key}={value}" for key, value in sniffed_dialect.items() if value is not None)
    return f"{_csv_options(options)}, auto_detect=false, {added}, columns={{{names}}}"


def _scan_template(path: Path, options: str) -> str:
    """A ``read_csv`` call with a ``{}`` where the rejects options go."""
    escaped = options.replace("{", "{{").replace("}", "}}")
    return f"read_csv({quote_literal(str(path))}, {escaped}, {{}})"


def read_csv(
    con: duckdb.DuckDBPyConnection, source: str, config: TableSource, path: Path, tag: str
) -> RawRelation:
    options = csv_of(config)
    check_encoding(source, path, options.encoding, f"sources.{source}.csv.encoding")
    unreadable = "cannot be read as CSV"
    scan = _scan_template(path, _csv_options(options))
    try:
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {scan.format(_rejects(None))}").fetchall()
        except duckdb.Error:
            fixed = _sniffed_options(con, path, options)
            if fixed is None:
                raise
            scan = _scan_template(path, fixed)
            described = con.execute(f"DESCRIBE SELECT * FROM {scan.format(_rejects(None))}").fetchall()
    except duckdb.Error as exc:
        raise SourceError(
            source,
            f"file `{path.name}` {unreadable}: {_first_line(str(exc))}",
            hint=f"check that it is a text CSV file with lines under {options.max_line_size} bytes "
            f"(`sources.{source}.csv.max_line_size`); set `sources.{source}.csv.delimiter` if detection fails",
        ) from None
    columns = _columns([row[0] for row in described])
    select = {c.name: quote_identifier(c.source_name) for c in columns}
    return RawRelation(
        columns,
        scan.format(_rejects(tag)),
        scan.format(_rejects(None)),
        select,
        "NULL",
        _record_json(select),
        f"rejects_{tag}",
        unreadable,
    )


def _json_lines_relation(source_sql: str) -> str:
    return f"(SELECT {JSON_LINE} FROM {source_sql} WHERE {JSON_LINE} IS NOT NULL AND trim({JSON_LINE}) <> '')"


def _json_relation(
    con: duckdb.DuckDBPyConnection,
    source: str,
    path: Path,
    relation: str,
    sample: str,
    rejects: str | None,
    unreadable: str,
) -> RawRelation:
    # CASE, not AND: DuckDB evaluates both sides of AND, and json_type fails on invalid JSON.
    is_object = f"(CASE WHEN json_valid({JSON_LINE}) THEN json_type({JSON_LINE}) = 'OBJECT' ELSE false END)"
    try:
        # Column order from the first rows, as they stand in the file; every key of every row
        # counts, so a field that first appears late in the data still becomes a column.
        with in_file_order(con):
            first = con.execute(
                f"SELECT json_keys({JSON_LINE}) FROM {sample} WHERE {is_object} LIMIT {SAMPLE_ROWS}"
            ).fetchall()
        every = con.execute(
            f"SELECT DISTINCT unnest(json_keys({JSON_LINE})) FROM {sample} WHERE {is_object}"
        ).fetchall()
        seen = dict.fromkeys(key for (listed,) in first for key in listed)
        keys = [(key,) for key in seen] + sorted(row for row in every if row[0] not in seen)
    except duckdb.Error as exc:
        raise SourceError(
            source,
            f"file `{path.name}` {unreadable}: {_first_line(str(exc))}",
            hint=f"set `sources.{source}.format` to `json` for one array per file, `jsonl` for one object per line",
        ) from None
    columns = _columns([row[0] for row in keys])
    select = {
        c.name: f"CASE WHEN {is_object} THEN json_extract_string({JSON_LINE}, {quote_literal(json_path(c.source_name))}) END"
        for c in columns
    }
    error = (
        f"CASE WHEN NOT json_valid({JSON_LINE}) THEN 'invalid JSON' "
        f"WHEN json_type({JSON_LINE}) <> 'OBJECT' THEN 'not a JSON object' END"
    )
    return RawRelation(columns, relation, sample, select, error, JSON_LINE, rejects, unreadable)


@contextmanager
def in_file_order(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Queries in this block see rows in file order: loading connections drop insertion order
    (it costs memory), which makes ``LIMIT`` take any rows, not the first ones, and so what is
    read from a sample differ from one run to the next."""
    (preserved,) = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() or (True,)
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        if not preserved:
            con.execute("SET preserve_insertion_order = false")


def json_path(key: str) -> str:
    return '$."' + key.replace('"', '\\"') + '"'


def read_jsonl(
    con: duckdb.DuckDBPyConnection, source: str, config: TableSource, path: Path, tag: str
) -> RawRelation:
    check_encoding(source, path, "utf-8", None)
    # Lines are read as single text columns: valid JSON never holds a raw \x1f, so no line splits.
    lines = (
        f"read_csv({quote_literal(str(path))}, columns={{{{'{JSON_LINE}': 'VARCHAR'}}}}, header=false, "
        f"delim=E'\\x1f', quote='', escape='', auto_detect=false, "
        f"max_line_size={csv_of(config).max_line_size}, buffer_size={_buffer_size(csv_of(config).max_line_size)}, {{}})"
    )
    return _json_relation(
        con,
        source,
        path,
        _json_lines_relation(lines.format(_rejects(tag))),
        _json_lines_relation(lines.format(_rejects(None))),
        f"rejects_{tag}",
        "cannot be read as JSON lines",
    )


def read_json_array(
    con: duckdb.DuckDBPyConnection, source: str, config: TableSource, path: Path, tag: str
) -> RawRelation:
    check_encoding(source, path, "utf-8", None)
    # Each element as its JSON text: without ``columns`` DuckDB infers one STRUCT for all
    # elements, whose text is not JSON and whose keys are the union of every element's.
    values = (
        f"(SELECT CAST(json AS VARCHAR) AS {JSON_LINE} FROM read_json({quote_literal(str(path))}, "
        f"format='array', records=false, columns={{'json': 'JSON'}}, "
        f"maximum_object_size={csv_of(config).max_line_size}))"
    )
    return _json_relation(con, source, path, values, values, None, "is not a valid JSON array")


def read_parquet(
    con: duckdb.DuckDBPyConnection, source: str, config: TableSource, path: Path, tag: str
) -> RawRelation:
    relation = f"read_parquet({quote_literal(str(path))})"
    unreadable = "is not a readable Parquet file"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    except duckdb.Error as exc:
        raise SourceError(source, f"file `{path.name}` {unreadable}: {_first_line(str(exc))}") from None
    columns = _columns([row[0] for row in described], [from_duckdb(row[1]) for row in described])
    select = {c.name: quote_identifier(c.source_name) for c in columns}
    return RawRelation(
        columns, relation, relation, select, "NULL", _record_json(select), None, unreadable, typed=True
    )


PAGE_LINE_SIZE = 32 << 20
"""Longest page accepted, in bytes."""


def read_pages(records: str) -> Reader:
    """A reader of the pages an HTTP source fetched: one relation row per record."""
    path_sql = "$.body" + "".join(
        f".{json_path(part)[2:]}" for part in records.removeprefix("$").split(".") if part
    )

    def read(
        con: duckdb.DuckDBPyConnection, source: str, config: TableSource, path: Path, tag: str
    ) -> RawRelation:
        del tag  # pages were written by Lagoa: no line to reject
        lines = (
            f"read_csv({quote_literal(str(path))}, columns={{'{JSON_LINE}': 'VARCHAR'}}, header=false, "
            f"delim=E'\\x1f', quote='', escape='', auto_detect=false, "
            f"max_line_size={PAGE_LINE_SIZE}, buffer_size={_buffer_size(PAGE_LINE_SIZE)})"
        )
        records_sql = (
            f"(SELECT CAST(unnest(json_extract({JSON_LINE}, {quote_literal(path_sql + '[*]')})) AS VARCHAR) "
            f"AS {JSON_LINE} FROM {lines})"
        )
        return _json_relation(
            con, source, path, records_sql, records_sql, None, "holds pages Lagoa cannot read"
        )

    return read


READERS: dict[str, Reader] = {
    "csv": read_csv,
    "jsonl": read_jsonl,
    "json": read_json_array,
    "parquet": read_parquet,
}
