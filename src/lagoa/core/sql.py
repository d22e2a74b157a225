"""Quoting for the SQL Lagoa writes (DuckDB's and Postgres's rules are the same for these)."""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
