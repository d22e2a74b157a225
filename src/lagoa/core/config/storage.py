"""Where the lake's files, its Iceberg catalog and its run history live."""

from __future__ import annotations

from pydantic import field_validator

from lagoa.core.config.base import Model, environment_value


class StorageConfig(Model):
    """Where the lake's files live."""

    root: str = ".lagoa/lake"
    """Folder (relative to the project) or URI holding raw/, bronze/, silver/ and gold/; may use
    ``${env:NAME}`` (resolved when the file is loaded)."""

    @field_validator("root")
    @classmethod
    def _environment(cls, value: str) -> str:
        return environment_value(value)


class CatalogConfig(Model):
    """The Iceberg catalog."""

    uri: str = "sqlite:///.lagoa/catalog.db"
    """SQLAlchemy URI of the Iceberg SQL catalog (SQLite, or Postgres: ``postgresql://…``, whose
    password may be a secret reference); relative SQLite paths are relative to the project."""
    name: str = "lagoa"
    """Catalog name recorded in the catalog tables."""


class StateConfig(Model):
    """Run history and locks."""

    uri: str = "sqlite:///.lagoa/state.db"
    """SQLAlchemy URI of the state database (SQLite, or Postgres: ``postgresql://…``)."""
