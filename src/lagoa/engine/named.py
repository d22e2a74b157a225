"""What a SQL statement names: the functions it calls and the tables it reads, from DuckDB's own
syntax tree (``json_serialize_sql``), not from its text.

A reader of the warehouse makes views of the tables a query reads, not of the whole lake: making
a view reads its table's metadata (on S3, requests; in a lake of hundreds of tables, seconds).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import duckdb

from lagoa.core.sql import quote_literal

CATALOG_SCHEMAS = ("information_schema", "pg_catalog")
CATALOG_FUNCTIONS = ("duckdb_", "pragma_", "information_schema")
"""What lists the connection's tables: a statement using them sees every view of the lake."""


@dataclass(frozen=True)
class Names:
    functions: frozenset[str]
    """Every function and table function called, as written."""
    bare: frozenset[str]
    """Tables named without a schema or catalog, as written (a file's path is one), except the
    statement's own common table expressions."""
    tables: frozenset[str] | None
    """``schema.table`` (lower case) of every table named; None when the statement may see tables
    it does not name (it lists the catalog, or SHOWs)."""


def names(sql: str) -> Names | None:
    """What the one statement ``sql`` names; None when DuckDB cannot serialise it (not a SELECT,
    several statements, a PIVOT, a syntax error)."""
    con = duckdb.connect()
    try:
        row = con.execute(f"SELECT json_serialize_sql({quote_literal(sql)})").fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    tree = json.loads(row[0]) if row else {}
    if not isinstance(tree, dict) or tree.get("error") or len(tree.get("statements") or []) != 1:
        return None
    functions: set[str] = set()
    bare: set[str] = set()
    ctes: set[str] = set()
    named: set[str] = set()
    blind = False

    def walk(node: Any) -> None:
        nonlocal blind
        if isinstance(node, list):
            for value in node:
                walk(value)
            return
        if not isinstance(node, dict):
            return
        if node.get("class") == "FUNCTION" and isinstance(node.get("function_name"), str):
            functions.add(node["function_name"])
        if node.get("type") == "SHOW_REF":
            blind = True
        for entry in (node.get("cte_map") or {}).get("map") or []:
            if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                ctes.add(entry["key"].lower())
        if node.get("type") == "BASE_TABLE" and isinstance(node.get("table_name"), str):
            schema = str(node.get("schema_name") or "").lower()
            blind = blind or schema in CATALOG_SCHEMAS
            if schema or node.get("catalog_name"):
                catalog = str(node.get("catalog_name") or "").lower()
                catalog = "" if catalog == "memory" else catalog  # the reader's own database
                named.add(".".join(filter(None, (catalog, schema, node["table_name"].lower()))))
            else:
                bare.add(node["table_name"])
        for value in node.values():
            walk(value)

    walk(tree["statements"])
    blind = blind or any(f.lower().startswith(CATALOG_FUNCTIONS) for f in functions)
    bare = {name for name in bare if name.lower() not in ctes}
    return Names(frozenset(functions), frozenset(bare), None if blind else frozenset(named))


def reads_only(sql: str, schemas: Collection[str]) -> frozenset[str] | None:
    """The ``schema.table`` names (lower case) that ``sql`` reads, when every table it reads is
    named with one of ``schemas``; None when it reads anything else, or may (a table without a
    schema, a catalog listing, a statement DuckDB cannot serialise): then it needs them all."""
    found = names(sql)
    if found is None or found.tables is None or found.bare:
        return None
    if any(name.count(".") != 1 or name.split(".", 1)[0] not in schemas for name in found.tables):
        return None
    return found.tables
