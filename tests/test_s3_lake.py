"""The lake on S3 with a Glue catalog, against moto's server as a process: the retail pipeline
builds the same lake as on local disk; every table is an Iceberg table in Glue that a plain
pyiceberg Glue catalog and a plain DuckDB (httpfs) read with the same rows; a secret from Secrets
Manager is used and never written; a SIGKILL during an S3 ingest, then a re-run, ends exact."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from lagoa.core.time import Interval
from lagoa.orchestrate.project import Project
from tests.aws import REGION, moto_server, point_at
from tests.conftest import copy_example, lake_rows
from tests.test_crash_safety import CONFIG, fingerprint, kill_partway
from tests.test_run_processes import generate_orders

DAY = Interval(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 2, tzinfo=UTC))
BUCKET = "lake"
TOKEN = "hook-t0ken-9f2c1e"
NAMESPACES = ("raw", "bronze", "silver", "gold")


@pytest.fixture(scope="module")
def aws() -> Iterator[str]:
    """moto's server, with this process (and those it starts) pointed at it."""
    with moto_server() as url, pytest.MonkeyPatch.context() as patch:
        point_at(url, patch)
        import boto3

        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield url


class _Hook(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def hook() -> Iterator[tuple[str, list[str]]]:
    """A webhook on loopback; the Authorization headers it received."""
    seen: list[str] = []
    handler = type("Hook", (_Hook,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", seen
    finally:
        server.shutdown()
        server.server_close()


def _on_s3(folder: Path, prefix: str, extra: str = "") -> Path:
    config = (folder / "lagoa.yml").read_text()
    (folder / "lagoa.yml").write_text(
        f"{config}\nstorage: {{root: 's3://{BUCKET}/{prefix}'}}\ncatalog: {{uri: 'glue://{prefix}'}}\n{extra}"
    )
    return folder


def _lagoa(*args: str, project: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lagoa", *args, "-p", str(project)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _objects(prefix: str) -> dict[str, bytes]:
    import boto3

    s3 = boto3.client("s3", region_name=REGION)
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
    return found


def test_the_retail_pipeline_on_s3_and_glue_builds_the_lake_every_engine_reads(
    aws: str, tmp_path: Path, hook: tuple[str, list[str]]
) -> None:
    import boto3
    import duckdb
    from pyiceberg.catalog.glue import GlueCatalog

    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="lagoa/hook", SecretString=json.dumps({"token": TOKEN})
    )
    url, received = hook
    local = Project.load(copy_example("retail_lakehouse", tmp_path / "local"))
    assert local.run(["daily"], interval=DAY).succeeded

    notify = (
        f"notifications:\n  - kind: webhook\n    url: {url}\n    events: [success]\n"
        "    headers: {Authorization: 'Bearer ${aws-secret:lagoa/hook#token}'}\n"
    )
    folder = _on_s3(copy_example("retail_lakehouse", tmp_path / "s3"), "retail", notify)
    done = _lagoa("run", "daily", "--date", "2024-06-01", project=folder)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (folder / ".lagoa" / "lake").exists()  # nothing of the lake on local disk

    on_s3 = Project.load(folder)
    tables = sorted(t.identifier for t in local.tables())
    assert sorted(t.identifier for t in on_s3.tables()) == tables
    for table in tables:
        assert lake_rows(on_s3, table) == lake_rows(local, table), table
    gold = [t for t in tables if t.startswith("gold.")]
    assert gold, "the retail pipeline publishes gold tables"

    # Glue holds every table as an Iceberg table; a plain pyiceberg Glue catalog and a plain DuckDB
    # with httpfs read the same rows from S3.
    glue = boto3.client("glue", region_name=REGION)
    registered = {
        f"{namespace}.{entry['Name']}": entry
        for namespace in NAMESPACES
        for entry in glue.get_tables(DatabaseName=f"retail_{namespace}")["TableList"]
    }
    assert sorted(registered) == tables
    plain = GlueCatalog("plain", **{"glue.endpoint": aws, "glue.region": REGION, "s3.endpoint": aws})
    raw = duckdb.connect()
    for name in ("httpfs", "avro", "iceberg"):
        raw.execute(f"LOAD {name}")  # installed from the packages by Lagoa's own connections
    host = aws.removeprefix("http://")
    raw.execute(
        f"CREATE SECRET (TYPE s3, KEY_ID 'testing', SECRET 'testing', REGION '{REGION}', "
        f"ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)"
    )
    for identifier, entry in registered.items():
        assert entry["Parameters"]["table_type"] == "ICEBERG" and entry["TableType"] == "EXTERNAL_TABLE"
        location = entry["Parameters"]["metadata_location"]
        assert location.startswith(f"s3://{BUCKET}/retail/")
        namespace, name = identifier.split(".")
        loaded = plain.load_table(f"retail_{namespace}.{name}")
        rows = local.query(f"select count(*) from {identifier}")[1][0][0]
        assert loaded.scan().to_arrow().num_rows == rows, identifier
        (through_httpfs,) = raw.execute(f"select count(*) from iceberg_scan('{location}')").fetchone() or (0,)
        assert through_httpfs == rows, identifier
    for identifier in gold:
        namespace, name = identifier.split(".")
        arrow = plain.load_table(f"retail_{namespace}.{name}").scan().to_arrow()
        columns = [c for c in arrow.column_names if not c.startswith("_lagoa")]
        expected = local.query(f"select {', '.join(columns)} from {identifier}")[1]
        read = [tuple(row.values()) for row in arrow.select(columns).to_pylist()]
        assert sorted(read, key=repr) == sorted(expected, key=repr), identifier

    # Raw landing, quality results and the lake id are objects in the bucket too.
    objects = _objects("retail/")
    assert any(key.startswith("retail/raw/erp_orders/") for key in objects)
    assert any(key.startswith("retail/quality/") for key in objects)

    # The secret came from Secrets Manager and was used, and is written nowhere.
    assert received == [f"Bearer {TOKEN}"]
    assert TOKEN not in done.stdout + done.stderr
    shown = _lagoa("runs", "--json", project=folder)
    assert shown.returncode == 0 and TOKEN not in shown.stdout
    doctor = _lagoa("doctor", project=folder)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"s3://{BUCKET}/retail" in doctor.stdout and TOKEN not in doctor.stdout + doctor.stderr
    assert not [key for key, data in objects.items() if TOKEN.encode() in data]
    assert not [p for p in folder.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]


def _ingest(project: Path) -> list[str]:
    return [sys.executable, "-m", "lagoa", "ingest", "-p", str(project)]


@pytest.mark.slow
def test_a_kill_during_an_s3_ingest_then_a_rerun_ends_exact(aws: str, tmp_path: Path) -> None:
    template = tmp_path / "template"
    template.mkdir()
    (template / "lagoa.yml").write_text(CONFIG)
    generate_orders(template)
    reference = _on_s3(shutil.copytree(template, tmp_path / "reference"), "reference")
    started = time.monotonic()
    first = _lagoa("ingest", project=reference)
    assert first.returncode == 0, first.stderr[-3000:]
    duration = time.monotonic() - started
    expected = fingerprint(reference)
    with (template / "samples" / "erp_orders.csv").open("rb") as data:
        assert expected["bronze"][0] == sum(1 for _ in data) - 1
    killed = 0
    for number, fraction in enumerate((0.3, 0.6, 0.85)):

        def fresh(attempt: int, number: int = number) -> Path:
            name = f"killed{number}try{attempt}"  # each try a lake of its own
            return _on_s3(shutil.copytree(template, tmp_path / name), name)

        project, was_killed = kill_partway(fresh, _ingest, duration * fraction)
        killed += was_killed
        again = _lagoa("ingest", project=project)
        assert again.returncode == 0, again.stderr[-3000:]
        assert fingerprint(project) == expected, f"after a kill at {fraction:.0%} of the run"
        assert _lagoa("ingest", project=project).returncode == 0  # a further run is a no-op
        assert fingerprint(project) == expected
    assert killed == 3


def test_a_dataset_publish_and_table_maintenance_work_on_s3(aws: str, tmp_path: Path) -> None:
    """The CTAS publish swaps its pointer object; expiry and compaction work on S3's objects."""
    folder = copy_example("orders_summary", tmp_path / "orders")
    config = (folder / "lagoa.yml").read_text()
    (folder / "lagoa.yml").write_text(f"{config}\nstorage: {{root: 's3://{BUCKET}/orders'}}\n")
    project = Project.load(folder)
    project.ingest()
    project.transform()
    columns = "order_date, status, orders, units, revenue"
    _, model = project.query(f"select {columns} from main.orders_summary order by 1, 2")
    assert model
    assert project.query(f"select {columns} from gold.orders_summary order by 1, 2")[1] == model

    def pointer() -> dict[str, Any]:
        stored = _objects("orders/exports/orders_summary.current")
        return dict(json.loads(stored["orders/exports/orders_summary.current"]))

    def versions() -> set[str]:
        return {key.split("/")[3] for key in _objects("orders/exports/orders_summary.versions/")}

    first = pointer()["version"]
    assert versions() == {first}
    assert project.publish(run_id=first)[0].skipped  # the same run again: nothing happens
    assert not project.publish(run_id="run-second")[0].skipped
    assert pointer()["version"] == "run-second" and versions() == {first, "run-second"}
    project.publish(run_id="run-third")
    assert pointer()["version"] == "run-third" and versions() == {"run-second", "run-third"}
    assert project.query(f"select {columns} from gold.orders_summary order by 1, 2")[1] == model

    _, rows = project.query("select count(*), sum(hash(order_id, updated_at)) from silver.orders")
    before = len(_objects("orders/silver/orders/data/"))
    compacted = project.optimize("silver.orders")
    assert compacted.rows == rows[0][0]
    expired = project.expire("silver.orders", datetime.now(UTC))
    assert expired.expired_snapshots >= 1 and expired.deleted_files >= 1
    assert len(_objects("orders/silver/orders/data/")) < before + compacted.files_after
    assert project.query("select count(*), sum(hash(order_id, updated_at)) from silver.orders")[1] == rows


def test_s3_storage_writes_once_lists_and_cleans_up_what_a_killed_upload_left(
    aws: str, tmp_path: Path
) -> None:
    import boto3

    from lagoa.storage import open_storage

    storage = open_storage(f"s3://{BUCKET}/unit", tmp_path)
    assert storage.read_bytes("absent") is None
    assert storage.put_new("id", b"first") and not storage.put_new("id", b"second")
    assert storage.read_bytes("id") == b"first"
    storage.put_bytes("raw/a/1.csv", b"a")
    storage.put_bytes("raw/a/2.csv", b"b")
    storage.put_bytes("raw/ab/3.csv", b"c")  # a sibling whose name starts alike is not under raw/a
    assert storage.list("raw/a") == ["raw/a/1.csv", "raw/a/2.csv"]
    s3 = boto3.client("s3", region_name=REGION)
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="unit/raw/a/3.csv")  # a killed writer's
    assert storage.list("raw/a") == ["raw/a/1.csv", "raw/a/2.csv"]  # never listed
    # (moto reports every upload as initiated in 2010, so how old an upload must be is not
    # testable here: only that an old one is aborted.)
    assert storage.remove_stale("raw/a", 0) == 1
    assert not s3.list_multipart_uploads(Bucket=BUCKET, Prefix="unit/").get("Uploads")
    assert upload["UploadId"]
    storage.remove_tree(storage.location("raw/a"))
    assert storage.list("raw") == ["raw/ab/3.csv"]


def test_the_web_consoles_sandbox_reads_the_lake_on_s3_and_nothing_else(aws: str, tmp_path: Path) -> None:
    """`lagoa serve`'s console allows the lake's own prefix and refuses other objects of the same
    bucket, as it refuses files outside a local lake."""
    import boto3

    from lagoa.serve.console import Console, RefusedError

    folder = _on_s3(copy_example("orders_summary", tmp_path / "console"), "console")
    project = Project.load(folder)
    project.ingest()
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key="elsewhere/x.csv", Body=b"a\n1\n")
    console = Console(project)
    (expected,) = project.query("select count(*) from silver.orders")[1]
    assert console.page("select count(*) from silver.orders").rows == [list(expected)]
    for outside in (f"read_csv('s3://{BUCKET}/elsewhere/x.csv')", "read_csv('/etc/passwd')"):
        with pytest.raises(RefusedError, match="outside the lake"):
            console.page(f"select * from {outside}")
