"""Quoting for the SQL Lagoa writes (DuckDB's and Postgres's rules are the same for these)."""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def list_literal(values: list[str]) -> str:
    """A DuckDB list of string literals: ``['a', 'b']``."""
    return "[" + ", ".join(quote_literal(v) for v in values) + "]"


def in_list(values: list[str] | set[str]) -> str:
    """The inside of an ``IN (…)``: sorted string literals."""
    return ", ".join(quote_literal(v) for v in sorted(values))
