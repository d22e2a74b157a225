"""Types: Lagoa's type names, DuckDB's and Iceberg's, and which changes are safe evolutions."""

from __future__ import annotations

import re

from pyiceberg.schema import Schema
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
)

_NAMED: dict[str, IcebergType] = {
    "boolean": BooleanType(),
    "int": IntegerType(),
    "long": LongType(),
    "float": FloatType(),
    "double": DoubleType(),
    "date": DateType(),
    "time": TimeType(),
    "timestamp": TimestampType(),
    "timestamptz": TimestamptzType(),
    "string": StringType(),
    "binary": BinaryType(),
}

_DUCKDB: dict[str, str] = {
    "boolean": "BOOLEAN",
    "int": "INTEGER",
    "long": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "string": "VARCHAR",
    "binary": "BLOB",
}

_FROM_DUCKDB: dict[str, str] = {
    "BOOLEAN": "boolean",
    "TINYINT": "int",
    "SMALLINT": "int",
    "INTEGER": "int",
    "UTINYINT": "int",
    "USMALLINT": "int",
    "BIGINT": "long",
    "UINTEGER": "long",
    "HUGEINT": "long",  # sums of integers; published as long (a value that does not fit is an error)
    "UBIGINT": "decimal(20,0)",
    "FLOAT": "float",
    "DOUBLE": "double",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "VARCHAR": "string",
    "BLOB": "binary",
}

_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$", re.IGNORECASE)

# Iceberg's allowed type promotions (spec: "Schema Evolution").
_PROMOTIONS = {("int", "long"), ("float", "double")}


def iceberg_type(name: str) -> IcebergType:
    """The Iceberg type for a Lagoa type name (``long``, ``decimal(18,2)``…)."""
    if match := _DECIMAL.match(name):
        return DecimalType(int(match.group(1)), int(match.group(2)))
    return _NAMED[name]


def type_name(value: IcebergType) -> str:
    """The Lagoa type name of an Iceberg type."""
    if isinstance(value, DecimalType):
        return f"decimal({value.precision},{value.scale})"
    for name, candidate in _NAMED.items():
        if candidate == value:
            return name
    return "string"


def duckdb_type(name: str) -> str:
    """The DuckDB type for a Lagoa type name."""
    if match := _DECIMAL.match(name):
        return f"DECIMAL({match.group(1)},{match.group(2)})"
    return _DUCKDB[name]


def from_duckdb(duckdb_name: str) -> str:
    """The Lagoa type name for a DuckDB column type; nested and exotic types become strings."""
    upper = duckdb_name.upper()
    if upper.startswith("DECIMAL"):
        return duckdb_name.lower().replace(" ", "")
    return _FROM_DUCKDB.get(upper, "string")


def can_promote(old: str, new: str) -> bool:
    """True when a column of type ``old`` may become ``new`` without rewriting data."""
    if old == new or (old, new) in _PROMOTIONS:
        return True
    old_decimal, new_decimal = _DECIMAL.match(old), _DECIMAL.match(new)
    if old_decimal and new_decimal:
        same_scale = old_decimal.group(2) == new_decimal.group(2)
        return same_scale and int(new_decimal.group(1)) >= int(old_decimal.group(1))
    return False


def reads_as(table_type: str, data_type: str) -> bool:
    """True when values inferred as ``data_type`` can be read into a ``table_type`` column.

    Narrower data fits a wider column (long into double, int into long), and anything fits a
    string column. Values that then fail to parse are quarantined row by row.
    """
    if can_promote(data_type, table_type) or table_type == "string" or data_type == "string":
        return True
    numeric = ("int", "long", "float", "double")
    if data_type in numeric and (table_type in ("float", "double") or _DECIMAL.match(table_type)):
        return True
    return (data_type, table_type) in {
        ("date", "timestamp"),
        ("date", "timestamptz"),
        ("timestamp", "timestamptz"),
    }


def iceberg_schema(columns: list[tuple[str, IcebergType]]) -> Schema:
    """A schema of optional fields, numbered from 1, in the given order."""
    return Schema(*[NestedField(i + 1, name, t, required=False) for i, (name, t) in enumerate(columns)])
