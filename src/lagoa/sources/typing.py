"""From raw text columns to typed columns: type inference on a sample, and the typed projection.

Inference picks, per column, the most specific type that at least 99% of the sample's non-empty
values parse as, so a few bad values do not turn a numeric column into text: they are
quarantined instead. Values with leading zeros (``007``) stay text, since they are usually codes.
"""

from __future__ import annotations

import duckdb

from lagoa.core.sql import quote_identifier, quote_literal
from lagoa.lake.schema import duckdb_type
from lagoa.sources.readers import SAMPLE_ROWS, RawRelation, in_file_order

AGREEMENT = 0.99
INTEGER = r"[+-]?[0-9]+"
PADDED_INTEGER = r"\s*[+-]?[0-9]+\s*"
LEADING_ZERO = r"[+-]?0[0-9]+"
DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
TIMESTAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
TIMESTAMPTZ = TIMESTAMP + r"\s*(Z|[+-][0-9]{2}(:?[0-9]{2})?)"
PREVIEW = 80

# Candidate types in order of preference, each with the condition a value must meet.
CANDIDATES: tuple[tuple[str, str], ...] = (
    ("long", f"regexp_full_match({{v}}, '{INTEGER}') AND TRY_CAST({{v}} AS BIGINT) IS NOT NULL"),
    ("double", "TRY_CAST({v} AS DOUBLE) IS NOT NULL"),
    ("date", f"regexp_full_match({{v}}, '{DATE}') AND TRY_CAST({{v}} AS DATE) IS NOT NULL"),
    ("timestamp", f"regexp_full_match({{v}}, '{TIMESTAMP}') AND TRY_CAST({{v}} AS TIMESTAMP) IS NOT NULL"),
    (
        "timestamptz",
        f"regexp_full_match({{v}}, '{TIMESTAMPTZ}') AND TRY_CAST({{v}} AS TIMESTAMPTZ) IS NOT NULL",
    ),
    ("boolean", "lower({v}) IN ('true', 'false')"),
)


def infer_types(con: duckdb.DuckDBPyConnection, relation: RawRelation, names: list[str]) -> dict[str, str]:
    """Lagoa type names for the given text columns, from the first rows of the file."""
    if not names:
        return {}
    aggregates = []
    for index, name in enumerate(names):
        value = f"NULLIF(trim({quote_identifier(name)}), '')"
        aggregates.append(f"count({value}) AS n{index}")
        aggregates.append(f"count(*) FILTER (WHERE regexp_full_match({value}, '{LEADING_ZERO}')) AS z{index}")
        for position, (_, condition) in enumerate(CANDIDATES):
            aggregates.append(
                f"count(*) FILTER (WHERE {condition.replace('{v}', value)}) AS c{index}_{position}"
            )
    select = ", ".join(f"{expr} AS {quote_identifier(name)}" for name, expr in relation.select.items())
    sample = f"(SELECT {select} FROM {relation.sample_clause} LIMIT {SAMPLE_ROWS})"
    with in_file_order(con):  # the first rows, the same ones on every run
        row = con.execute(f"SELECT {', '.join(aggregates)} FROM {sample}").fetchone()
    assert row is not None
    stride = 2 + len(CANDIDATES)
    types = {}
    for index, name in enumerate(names):
        counts = row[index * stride : (index + 1) * stride]
        present, leading_zeros, matches = counts[0], counts[1], counts[2:]
        types[name] = "string"
        if present and not leading_zeros:
            for (type_name, _), matched in zip(CANDIDATES, matches, strict=True):
                if matched >= AGREEMENT * present:
                    types[name] = type_name
                    break
    return types


def cast_expression(text: str, type_name: str, typed_source: bool) -> str:
    """SQL for the typed value of ``text`` (NULL when it does not parse)."""
    target = duckdb_type(type_name)
    if typed_source:
        return f"TRY_CAST({text} AS {target})"
    if type_name == "string":
        return text
    if type_name in ("int", "long"):
        # DuckDB casts '12.5' to 13; integers must look like integers.
        return (
            f"CASE WHEN regexp_full_match({text}, '{PADDED_INTEGER}') THEN TRY_CAST({text} AS {target}) END"
        )
    return f"TRY_CAST({text} AS {target})"


def failure_message(column: str, text: str, type_name: str) -> str:
    preview = f"left(CAST({text} AS VARCHAR), {PREVIEW})"
    return f"{quote_literal(column + ': ')} || '''' || {preview} || ''' is not a {type_name}'"


def typed_select(
    relation: RawRelation,
    schema: list[tuple[str, str]],
    lineage: dict[str, str],
    cursor_filter: str | None = None,
) -> str:
    """SQL producing bronze rows: typed columns in ``schema`` order, lineage columns, and
    ``_lagoa_error`` / ``_lagoa_raw`` for rows that did not parse (NULL for good rows).

    Built in layers so that every value is extracted and cast exactly once per row: DuckDB does
    not share a repeated expression, and the error check needs the cast's result.
    """
    texts, values, suspects, checks, output = [], [], [], [], []
    for index, (name, type_name) in enumerate(schema):
        column = quote_identifier(name)
        if name not in relation.select:
            output.append(f"CAST(NULL AS {duckdb_type(type_name)}) AS {column}")
            continue
        text, value = f"__lagoa_t{index}", f"__lagoa_v{index}"
        texts.append(f"{relation.select[name]} AS {text}")
        values.append(f"{cast_expression(text, type_name, relation.typed)} AS {value}")
        if relation.typed or type_name != "string":
            suspect = f"({value} IS NULL AND {text} IS NOT NULL)"
            # TRY_CAST ignores surrounding spaces, and a blank value is missing, not bad.
            blank = "" if relation.typed else f" AND trim({text}) <> ''"
            suspects.append(suspect)
            checks.append(f"CASE WHEN {suspect}{blank} THEN {failure_message(name, text, type_name)} END")
        output.append(f"{value} AS {column}")
    # DuckDB evaluates every operand of AND/OR in a projection, but only the matching rows of a
    # CASE branch: so the cheap null test runs on every row, and the trim and the messages only
    # on the few rows where a value did not cast (trimming every value cost ~40% of a load).
    parse_error = (
        f"CASE WHEN {' OR '.join(suspects)} THEN NULLIF(concat_ws('; ', {', '.join(checks)}), '') END"
        if checks
        else "NULL"
    )
    output += [f"{expr} AS {quote_identifier(name)}" for name, expr in lineage.items()]
    output.append("__lagoa_error AS _lagoa_error")
    output.append(
        f"CASE WHEN __lagoa_error IS NOT NULL THEN CAST({relation.raw} AS VARCHAR) END AS _lagoa_raw"
    )
    extracted = f"SELECT *, {', '.join([*texts, f'{relation.error} AS __lagoa_structural'])} FROM {relation.from_clause}"
    cast = f"SELECT *, {', '.join(values)} FROM ({extracted})" if values else extracted
    checked = f"SELECT *, COALESCE(__lagoa_structural, {parse_error}) AS __lagoa_error FROM ({cast})"
    typed = f"SELECT {', '.join(output)} FROM ({checked})"
    if cursor_filter:
        return f"SELECT * FROM ({typed}) WHERE _lagoa_error IS NOT NULL OR ({cursor_filter})"
    return typed


def rejects_select(relation: RawRelation, schema: list[tuple[str, str]], lineage: dict[str, str]) -> str:
    """SQL producing bronze rows for the lines DuckDB rejected (wrong column count, bad encoding…)."""
    columns = [
        f"CAST(NULL AS {duckdb_type(type_name)}) AS {quote_identifier(name)}" for name, type_name in schema
    ]
    columns += [f"{expr} AS {quote_identifier(name)}" for name, expr in lineage.items()]
    return (
        f"SELECT {', '.join(columns)}, "
        "'line ' || line || ': ' || string_agg(DISTINCT lower(error_type), '; ') || ' (' || min(error_message) || ')' "
        "AS _lagoa_error, any_value(csv_line) AS _lagoa_raw "
        f"FROM {relation.rejects_table} GROUP BY line ORDER BY line"
    )
