"""The whole of ``lagoa.yml``: every section together, and the checks that span sections."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from lagoa.core.config.base import Model, did_you_mean, environment_value, table_name
from lagoa.core.config.observe import ObserveConfig
from lagoa.core.config.orchestration import (
    INGEST_RUNS,
    RESERVED_PIPELINE_NAMES,
    DomainConfig,
    Notifier,
    OrchestrationConfig,
    PipelineConfig,
)
from lagoa.core.config.publish import DbtConfig, PublishSettings
from lagoa.core.config.quality import QualityConfig
from lagoa.core.config.sources import Source, source_tables
from lagoa.core.config.storage import CatalogConfig, StateConfig, StorageConfig
from lagoa.core.errors import ConfigError


def _collision(first: str, second: str, table: str) -> str:
    if first == second:
        return f"source `{first}` lists two tables that would both be `{table}`; list each table once"
    return f"sources `{first}` and `{second}` would both write `{table}`; give one of them another `entity`"


class ProjectConfig(Model):
    """The whole of ``lagoa.yml``."""

    name: str
    """Project name, used in run ids and lineage."""
    storage: StorageConfig = Field(default_factory=StorageConfig)
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    warehouse: str = ".lagoa/warehouse.duckdb"
    """DuckDB file holding bronze/silver/gold views over the lake (the local Athena)."""
    sources: dict[str, Source] = Field(default_factory=dict)
    domains: dict[str, DomainConfig] = Field(default_factory=dict)
    pipelines: dict[str, PipelineConfig] = Field(default_factory=dict)
    """Named sets of domains with their schedules; ``lagoa run <pipeline>``."""
    quality: QualityConfig = Field(default_factory=QualityConfig)
    dbt: DbtConfig = Field(default_factory=DbtConfig)
    publish: dict[str, PublishSettings] = Field(default_factory=dict)
    """dbt models published to gold, by model name (models may also say so in their meta)."""
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)
    notifications: list[Notifier] = Field(default_factory=list)
    """Slack, webhook or e-mail notifiers for run and task events."""
    observe: ObserveConfig = Field(default_factory=ObserveConfig)
    """Metrics, StatsD, OpenLineage and log format."""

    @field_validator("warehouse")
    @classmethod
    def _environment(cls, value: str) -> str:
        return environment_value(value)

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, Source]) -> dict[str, Source]:
        for name in value:
            table_name(name, "source name")
        writers: dict[str, str] = {}
        for name, source in value.items():
            for bronze, entity in source_tables(name, source):
                for table in (f"bronze.{bronze}", f"silver.{entity}"):
                    if table in writers:
                        raise ValueError(_collision(writers[table], name, table))
                    writers[table] = name
        return value

    @field_validator("publish")
    @classmethod
    def _model_names(cls, value: dict[str, PublishSettings]) -> dict[str, PublishSettings]:
        for model in value:
            table_name(model, "model")
        return value

    @model_validator(mode="after")
    def _domains_name_sources(self) -> ProjectConfig:
        for domain, config in self.domains.items():
            if domain == INGEST_RUNS:
                raise ValueError(
                    f"domain name `{domain}` is taken (by `lagoa ingest`'s runs); choose another"
                )
            for source in config.sources:
                if source not in self.sources:
                    raise ValueError(
                        f"domain `{domain}` lists source `{source}`, which is not defined"
                        f"{did_you_mean(source, self.sources)}"
                    )
        for name, pipeline in self.pipelines.items():
            if name in RESERVED_PIPELINE_NAMES or name in self.domains:
                raise ValueError(
                    f"pipeline name `{name}` is taken (by a domain, a `lagoa run` subcommand or `lagoa ingest`); choose another"
                )
            for domain in pipeline.domains:
                if domain not in self.domains:
                    raise ValueError(
                        f"pipeline `{name}` lists domain `{domain}`, which is not defined"
                        f"{did_you_mean(domain, self.domains)}"
                    )
        return self

    def pipeline(self, name: str) -> PipelineConfig:
        """The pipeline ``name``: a configured one, a domain (a pipeline of one), or ``all``."""
        if name in self.pipelines:
            return self.pipelines[name]
        if name in self.domains:
            domain = self.domains[name]
            return PipelineConfig(
                domains=[name],
                schedule=domain.schedule,
                interval=domain.interval,
                catchup=domain.catchup,
                start=domain.start,
            )
        if name == "all":
            return PipelineConfig(domains=list(self.domains))
        known = [*self.pipelines, *self.domains, "all"]
        raise ConfigError(f"no pipeline or domain named `{name}`{did_you_mean(name, known)}")

    def scheduled(self) -> dict[str, PipelineConfig]:
        """Every pipeline with a schedule: configured ones and scheduled domains."""
        found = {name: self.pipeline(name) for name in [*self.pipelines, *self.domains]}
        return {name: pipeline for name, pipeline in found.items() if pipeline.schedule}
