"""Where the lake's files, its Iceberg catalog and its run history live."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlparse

from pydantic import field_validator

from lagoa.core.config.base import Model, environment_value


class StorageConfig(Model):
    """Where the lake's files live."""

    root: str = ".lagoa/lake"
    """Folder (relative to the project), ``file://`` URI or ``s3://bucket/prefix`` holding raw/,
    bronze/, silver/ and gold/; may use ``${env:NAME}`` (resolved when the file is loaded)."""
    region: str | None = None
    """The S3 bucket's region (default: ``AWS_REGION``, then the AWS configuration's)."""
    endpoint: str | None = None
    """An S3-compatible server's URL, ``http(s)://host:port`` (default: ``AWS_ENDPOINT_URL_S3``,
    then ``AWS_ENDPOINT_URL``; none for AWS itself)."""

    @field_validator("root", "region", "endpoint")
    @classmethod
    def _environment(cls, value: str | None) -> str | None:
        return environment_value(value) if value is not None else None


GLUE = "glue://"


@dataclass(frozen=True)
class GlueUri:
    """What a ``glue://<prefix>?region=…&…`` catalog URI says."""

    prefix: str
    """The Glue databases' prefix: Lagoa's namespace ``bronze`` is the database ``<prefix>_bronze``."""
    options: dict[str, str] = field(default_factory=dict)
    """``region``, ``endpoint``, ``catalog_id``, ``profile``."""

    @classmethod
    def parse(cls, uri: str) -> GlueUri | None:
        """The URI's parts, or None when it names no Glue catalog."""
        if not uri.startswith(GLUE):
            return None
        url = urlparse(uri)
        return cls(url.netloc + url.path.rstrip("/"), dict(parse_qsl(url.query)))

    def database(self, namespace: str) -> str:
        return f"{self.prefix}_{namespace}"


class CatalogConfig(Model):
    """The Iceberg catalog."""

    uri: str = "sqlite:///.lagoa/catalog.db"
    """The Iceberg catalog: a SQL catalog's SQLAlchemy URI (SQLite, or Postgres:
    ``postgresql://…``, whose password may be a secret reference; relative SQLite paths are
    relative to the project), AWS Glue (``glue://<database prefix>?region=…``: the namespaces
    are the Glue databases ``<prefix>_raw``, ``<prefix>_bronze``, ``<prefix>_silver`` and
    ``<prefix>_gold``), or an Iceberg REST catalog (``rest+https://host/path``)."""
    name: str = "lagoa"
    """Catalog name recorded in the catalog tables."""

    @property
    def glue(self) -> GlueUri | None:
        """The Glue catalog this names, if it names one."""
        return GlueUri.parse(self.uri)


class StateConfig(Model):
    """Run history and locks."""

    uri: str = "sqlite:///.lagoa/state.db"
    """SQLAlchemy URI of the state database (SQLite, or Postgres: ``postgresql://…``)."""
