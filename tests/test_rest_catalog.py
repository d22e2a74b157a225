"""Lagoa's lake on a real Iceberg REST catalog (SeaweedFS's, see tests/rest_catalog.py): tables
made, committed and read through the catalog's HTTP API with SigV4, the server refusing a commit
made on a stale table, and a catalog that wants no token getting none."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lagoa.core.errors import CommitConflictError
from lagoa.core.names import BATCHES
from lagoa.core.time import Interval
from lagoa.lake.catalog import NAMESPACES, Lake
from lagoa.lake.catalogs import open_catalog
from lagoa.orchestrate.project import Project
from lagoa.storage.s3 import S3Settings, S3Storage
from tests.aws import point_at
from tests.conftest import copy_example, lake_rows
from tests.rest_catalog import BUCKET, RestCatalog, rest_catalog

if TYPE_CHECKING:
    from pyiceberg.table import Table

DAY = Interval(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 2, tzinfo=UTC))
CREDENTIALS = ("lagoa-test", "lagoa-test-secret")


@pytest.fixture(scope="module")
def server() -> Iterator[RestCatalog]:
    with rest_catalog(CREDENTIALS) as running:
        yield running


@pytest.fixture
def aws(server: RestCatalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process and those it starts reach the server's S3 with its credentials."""
    point_at(server.s3, monkeypatch)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS[1])


def _lake(server: RestCatalog, scratch: Path) -> Lake:
    storage = S3Storage(f"s3://{BUCKET}", S3Settings(server.region, server.s3), scratch)
    return Lake(server.uri(), storage)


def _append(lake: Lake, table: Table | None, batch: str, ids: list[int]) -> None:
    """One Lagoa commit of a Parquet file of ``ids``, recorded as ``batch``."""
    assert table is not None
    with lake.write(table, properties={BATCHES: [batch]}) as staged:
        path = f"{staged.folder}/{batch}.parquet"
        with table.io.new_output(path).create() as out:
            pq.write_table(pa.table({"id": pa.array(ids, pa.int64())}), out)
        staged.add.append(path)


def test_a_lake_on_a_rest_catalog_commits_reads_and_is_refused_a_stale_commit(
    server: RestCatalog, aws: None, tmp_path: Path
) -> None:
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField

    lake = _lake(server, tmp_path / "scratch")
    table = lake.create_table("bronze.orders", Schema(NestedField(1, "id", LongType(), required=False)))
    _append(lake, table, "b1", [1, 2])
    stale = lake.table("bronze.orders")
    _append(lake, lake.table("bronze.orders"), "b2", [3])
    with pytest.raises(CommitConflictError):  # the server checks the snapshot the commit was made on
        _append(lake, stale, "b3", [4])

    again = _lake(server, tmp_path / "scratch2")  # a new client: all it knows is from the server
    reread = again.table("bronze.orders")
    assert reread is not None
    assert sorted(reread.scan().to_arrow()["id"].to_pylist()) == [1, 2, 3]
    assert again.committed(reread) == {"b1", "b2"}
    assert reread.location() == f"s3://{BUCKET}/bronze/orders"
    assert again.identifiers() == ["bronze.orders"]

    namespaces = server.get(f"/v1/{BUCKET}/namespaces")["namespaces"]
    assert sorted(n[0] for n in namespaces) == sorted(NAMESPACES)
    listed = server.get(f"/v1/{BUCKET}/namespaces/bronze/tables")["identifiers"]
    assert listed == [{"namespace": ["bronze"], "name": "orders"}]
    loaded = server.get(f"/v1/{BUCKET}/namespaces/bronze/tables/orders")
    assert loaded["metadata-location"] == reread.metadata_location
    assert len(loaded["metadata"]["snapshots"]) == 2


def test_a_rest_catalog_without_a_token_is_sent_no_authorization() -> None:
    """pyiceberg on its own sends ``Bearer None``; a server that reads the header refuses it."""
    with rest_catalog() as open_server:
        uri = f"rest+{open_server.catalog}/?warehouse=s3://{BUCKET}"
        catalog = open_catalog(uri, f"s3://{BUCKET}", "lagoa", None).catalog
        catalog.create_namespace("bronze")
        assert catalog.list_namespaces() == [("bronze",)]
        assert open_server.get(f"/v1/{BUCKET}/namespaces")["namespaces"] == [["bronze"]]


def test_the_retail_pipeline_on_a_rest_catalog_builds_the_same_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog places the tables in its table bucket (an S3 Tables bucket takes nothing
    else); raw landing, quality results and the lake's id go to the storage root's own bucket.
    A server of its own: it holds this lake's tables only."""
    with rest_catalog(CREDENTIALS) as server:
        point_at(server.s3, monkeypatch)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS[0])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS[1])
        _retail_on(server, tmp_path)


def _retail_on(server: RestCatalog, tmp_path: Path) -> None:
    import boto3

    boto3.session.Session().client("s3", region_name=server.region).create_bucket(Bucket="lake")
    folder = copy_example("retail_lakehouse", tmp_path / "rest")
    config = (folder / "lagoa.yml").read_text()
    (folder / "lagoa.yml").write_text(
        f"{config}\nstorage: {{root: 's3://lake/retail'}}\ncatalog: {{uri: '{server.uri()}'}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "lagoa", "run", "daily", "--date", "2024-06-01", "-p", str(folder)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]

    local = Project.load(copy_example("retail_lakehouse", tmp_path / "local"))
    assert local.run(["daily"], interval=DAY).succeeded

    on_rest = Project.load(folder)
    tables = sorted(t.identifier for t in local.tables())
    assert sorted(t.identifier for t in on_rest.tables()) == tables
    for table in tables:
        assert lake_rows(on_rest, table) == lake_rows(local, table), table
    for namespace in NAMESPACES:
        listed = server.get(f"/v1/{BUCKET}/namespaces/{namespace}/tables")["identifiers"]
        assert sorted(f"{namespace}.{t['name']}" for t in listed) == [
            t for t in tables if t.startswith(f"{namespace}.")
        ]
