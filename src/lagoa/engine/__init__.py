"""DuckDB: connections with Lagoa's extensions, and the warehouse of views over the lake."""

from lagoa.core.sql import quote_identifier, quote_literal
from lagoa.engine.connection import connect
from lagoa.engine.warehouse import Warehouse

__all__ = ["Warehouse", "connect", "quote_identifier", "quote_literal"]
