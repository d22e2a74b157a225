"""The dbt project and how its models are published to gold."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lagoa.core.config.base import IDENTIFIER, Model, partition_fields
from lagoa.core.config.dbt_targets import DbtTargets


class PublishSettings(Model):
    """How a dbt model is published to ``gold.<model>``: set in lagoa.yml (``publish:``) or in the
    model's ``config(meta={'lagoa': {'publish': {...}}})``."""

    partition_by: list[str] = Field(default_factory=list)
    """Partition fields: ``column`` or ``day(column)``, ``month(…)``, ``year(…)``, ``hour(…)``."""
    zorder: list[str] = Field(default_factory=list)
    """Columns to Z-order rows by inside each partition (bit-interleaved ranks)."""
    sort_by: list[str] = Field(default_factory=list)
    """Columns to sort rows by inside each partition, when not Z-ordered."""
    rows_per_file: int = Field(default=1_000_000, ge=1)
    """Rows per data file at most; smaller files let point queries skip more."""
    format: Literal["iceberg", "parquet"] = "iceberg"
    """``iceberg``: the table ``gold.<model>``. ``parquet``: a CTAS-style dataset of Hive-partitioned
    Parquet files at ``location``, replaced as a whole on each publish."""
    location: str | None = None
    """For ``parquet``: the dataset's folder, relative to the storage root (e.g. ``exports/orders_summary``)."""

    @field_validator("partition_by")
    @classmethod
    def _partition_fields(cls, value: list[str]) -> list[str]:
        return partition_fields(value)

    @model_validator(mode="after")
    def _one_ordering(self) -> PublishSettings:
        if self.zorder and self.sort_by:
            raise ValueError("set either `zorder` or `sort_by`, not both")
        if self.format == "parquet":
            if not self.location:
                raise ValueError("a `parquet` publish needs a `location` (a folder under the storage root)")
            if any(not IDENTIFIER.match(field) for field in self.partition_by):
                raise ValueError(
                    "a `parquet` publish partitions by plain columns (Hive folders), not transforms"
                )
        return self


class DbtConfig(Model):
    """The dbt project Lagoa runs in process against the warehouse."""

    project: str = "dbt"
    """Folder of the dbt project (holding dbt_project.yml), relative to the project."""
    threads: int = Field(default=2, ge=1)
    """Models dbt builds at once."""
    targets: DbtTargets = Field(default_factory=DbtTargets)
    """Distributed engines the same dbt project runs on (``lagoa dbt profile --target …``): what
    their profiles cannot derive from the rest of lagoa.yml."""
