"""Opening the Iceberg catalog a ``catalog.uri`` names: a SQL catalog (SQLite, Postgres), AWS
Glue, or an Iceberg REST catalog, each through pyiceberg.

Lagoa names its namespaces ``raw``, ``bronze``, ``silver`` and ``gold``. Glue databases are
account-wide, so there they carry the project's prefix (``shop_bronze``); :class:`Names` maps
between the two, and nothing outside the lake sees a catalog's own names.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlparse

from lagoa.core.config.storage import GLUE, GlueUri
from lagoa.core.errors import ConfigError, LakeError

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

    from lagoa.storage.s3 import S3Settings

REST = ("rest+https://", "rest+http://")


@dataclass(frozen=True)
class Names:
    """Lagoa's namespace ↔ the catalog's: ``bronze`` ↔ ``<prefix>_bronze`` (no prefix: the same)."""

    prefix: str = ""

    def remote(self, identifier: str) -> str:
        return f"{self.prefix}_{identifier}" if self.prefix else identifier

    def local(self, identifier: str) -> str:
        if self.prefix and identifier.startswith(f"{self.prefix}_"):
            return identifier[len(self.prefix) + 1 :]
        return identifier


@dataclass(frozen=True)
class Opened:
    catalog: Catalog
    names: Names
    sql: bool
    """A SQL catalog: its commits run in a SQLAlchemy transaction the lease fence can join."""
    places_tables: bool = False
    """The catalog decides where each table's files go (a REST catalog over S3 Tables accepts
    no other place); otherwise Lagoa puts them under ``<root>/<namespace>/<table>``."""


def is_sql(uri: str) -> bool:
    """Whether ``uri`` names a SQL catalog (SQLite, Postgres), whose commits Lagoa fences."""
    return not uri.startswith((GLUE, *REST))


def sqlite_locations(uri: str, name: str) -> list[tuple[str, str, str | None]] | None:
    """(namespace, table, metadata location) of every table of a SQLite catalog, read with
    Python's own sqlite3 (no pyiceberg, no SQLAlchemy); None when ``uri`` is not a SQLite
    catalog or its database is not made yet."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    url = urlparse(uri)
    path = Path(url.path)
    if not path.is_file():
        return None
    timeout = float(dict(parse_qsl(url.query)).get("timeout", 30))
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=timeout)) as con:
            rows = con.execute(
                "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables WHERE catalog_name = ?",
                (name,),
            ).fetchall()
    except sqlite3.Error:  # no iceberg_tables yet: pyiceberg makes it when it opens the catalog
        return None
    return [(str(namespace), str(table), location) for namespace, table, location in rows]


def open_catalog(uri: str, warehouse: str, name: str, s3: S3Settings | None) -> Opened:
    """The catalog ``uri`` names, writing new tables under ``warehouse``."""
    io = s3.iceberg_properties() if s3 is not None else {}
    if uri.startswith(GLUE):
        return _glue(uri, warehouse, name, io, s3)
    if uri.startswith(REST):
        return _rest(uri, warehouse, name, io)
    if "://" not in uri:
        raise ConfigError(
            f"`{uri}` is not a catalog URI",
            key="catalog.uri",
            hint="use sqlite:///path, postgresql://…, glue://<database prefix> or rest+https://…",
        )
    if s3 is None:
        from lagoa.lake.local_io import IMPLEMENTATION

        io = {"py-io-impl": IMPLEMENTATION}
    return Opened(_sql(uri, warehouse, name, io), Names(), sql=True)


def _sql(uri: str, warehouse: str, name: str, io: dict[str, str]) -> Catalog:
    from pyiceberg.catalog.sql import SqlCatalog

    for attempt in range(3):
        try:
            return SqlCatalog(name, uri=uri, warehouse=warehouse, **io)
        except Exception as exc:
            # Another process created the catalog's tables between the check and the CREATE.
            if "already exists" in str(exc) and attempt < 2:
                continue
            raise LakeError(f"cannot open the Iceberg catalog at {uri}: {exc}") from None
    raise AssertionError("unreachable")


def _glue(uri: str, warehouse: str, name: str, io: dict[str, str], s3: S3Settings | None) -> Opened:
    """``glue://<prefix>?region=…&endpoint=…&catalog_id=…``: Glue in the region given (else the
    storage's, else the AWS configuration's); ``endpoint`` is for a stand-in server."""
    import os

    from pyiceberg.catalog.glue import GlueCatalog

    glue = GlueUri.parse(uri)
    assert glue is not None
    prefix = glue.prefix
    if not prefix or not prefix.replace("_", "").isalnum() or prefix != prefix.lower():
        raise ConfigError(
            f"`{uri}` needs a database prefix of lower-case letters, digits and _",
            key="catalog.uri",
            hint="write glue://<prefix>, e.g. glue://shop: the namespaces become Glue databases shop_bronze, …",
        )
    if not warehouse.startswith("s3://"):
        raise ConfigError(
            "a Glue catalog needs the lake on S3 (Athena and other engines read the tables from there)",
            key="catalog.uri",
            hint="set storage.root to s3://bucket/prefix",
        )
    query = glue.options
    unknown = set(query) - {"region", "endpoint", "catalog_id", "profile"}
    if unknown:
        raise ConfigError(f"unknown option `{sorted(unknown)[0]}` in `{uri}`", key="catalog.uri")
    region = query.get("region") or (s3.region if s3 else None)
    endpoint = (
        query.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL_GLUE") or os.environ.get("AWS_ENDPOINT_URL")
    )
    properties: dict[str, Any] = {"warehouse": warehouse, **io}
    if region:
        properties["glue.region"] = region
    if endpoint:
        properties["glue.endpoint"] = endpoint
    if "catalog_id" in query:
        properties["glue.id"] = query["catalog_id"]
    if "profile" in query:
        properties["glue.profile-name"] = query["profile"]
    try:
        catalog = GlueCatalog(name, **properties)
    except Exception as exc:
        raise LakeError(f"cannot open the Glue catalog ({uri}): {exc}") from None
    return Opened(catalog, Names(prefix), sql=False)


def _rest(uri: str, warehouse: str, name: str, io: dict[str, str]) -> Opened:
    """``rest+https://host/path``: an Iceberg REST catalog; its token, if any, from
    ``LAGOA_REST_TOKEN`` or a ``${…}`` secret in the URI's ``token`` query option."""
    import os

    from pyiceberg.catalog.rest import RestCatalog

    url = urlparse(uri.removeprefix("rest+"))
    query = dict(parse_qsl(url.query))
    properties: dict[str, Any] = {
        "uri": url._replace(query="").geturl(),
        "warehouse": query.pop("warehouse", warehouse),
        **io,
    }
    token = query.pop("token", None) or os.environ.get("LAGOA_REST_TOKEN")
    if token:
        properties["token"] = token
    elif "credential" not in query:
        # Without a token pyiceberg's default (OAuth2) auth still sends `Authorization: Bearer
        # None`, which a catalog that checks the header (SeaweedFS's) refuses with a 401.
        properties["auth"] = {"type": "noop"}
    properties.update(query)
    try:
        catalog = RestCatalog(name, **properties)
    except Exception as exc:
        raise LakeError(f"cannot open the REST catalog at {properties['uri']}: {exc}") from None
    return Opened(catalog, Names(), sql=False, places_tables=True)
