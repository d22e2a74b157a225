"""Partition specs from ``partition_by`` settings, and the DuckDB expressions that lay files out.

Lagoa writes data files with DuckDB; each file must hold exactly one partition so that pyiceberg
can derive the file's partition from its column statistics. DuckDB's ``PARTITION_BY`` on the
expressions below guarantees that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lagoa.core.config import PARTITION_FIELD
from lagoa.core.sql import quote_identifier

if TYPE_CHECKING:
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema


@dataclass(frozen=True)
class PartitionField:
    transform: str
    column: str

    @classmethod
    def parse(cls, text: str) -> PartitionField:
        match = PARTITION_FIELD.match(text)
        if match is None:  # config validation has already rejected these
            raise ValueError(text)
        if match.group(3):
            return cls("identity", match.group(3))
        return cls(match.group(1), match.group(2))

    @property
    def name(self) -> str:
        return self.column if self.transform == "identity" else f"{self.column}_{self.transform}"

    def duckdb_expression(self) -> str:
        column = quote_identifier(self.column)
        return {
            "identity": column,
            "year": f"year({column})",
            "month": f"strftime({column}, '%Y-%m')",
            "day": f"CAST({column} AS DATE)",
            "hour": f"date_trunc('hour', {column})",
        }[self.transform]


def partition_spec(fields: list[PartitionField], schema: Schema) -> PartitionSpec:
    from pyiceberg.partitioning import PartitionField as IcebergPartitionField
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.transforms import (
        DayTransform,
        HourTransform,
        IdentityTransform,
        MonthTransform,
        YearTransform,
    )

    transforms = {
        "identity": IdentityTransform,
        "year": YearTransform,
        "month": MonthTransform,
        "day": DayTransform,
        "hour": HourTransform,
    }
    return PartitionSpec(
        *[
            IcebergPartitionField(
                source_id=schema.find_field(field.column).field_id,
                field_id=1000 + index,
                transform=transforms[field.transform](),
                name=field.name,
            )
            for index, field in enumerate(fields)
        ]
    )
