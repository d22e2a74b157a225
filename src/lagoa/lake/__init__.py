"""The lake: Iceberg tables, their schemas, partitioning and commits."""

from lagoa.lake.catalog import NAMESPACES, Lake, TableInfo

__all__ = ["NAMESPACES", "Lake", "TableInfo"]
