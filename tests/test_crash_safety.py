"""SIGKILL at any point of an ingest of 1M rows, then a re-run, ends with exactly the right rows."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lagoa.orchestrate.project import Project

GENERATOR = Path(__file__).parents[1] / "examples" / "retail_lakehouse" / "generate.py"
CONFIG = """\
name: crash
sources:
  erp_orders:
    format: csv
    path: samples/erp_orders*.csv
    primary_key: [order_id]
    ordering: updated_at
    partition_by: ["day(order_ts)"]
    columns: {order_id: long, quantity: long, unit_price: double, order_ts: timestamp, updated_at: timestamp}
"""
FINGERPRINT = {
    "bronze": "select count(*), sum(hash(order_id, updated_at)) from bronze.erp_orders",
    "silver": "select count(*), sum(hash(order_id, updated_at, status)) from silver.erp_orders",
    "quarantine": "select count(*), count(distinct _lagoa_raw) from silver.erp_orders__quarantine",
}


def ingest_command(project: Path) -> list[str]:
    return [sys.executable, "-m", "lagoa.cli", "ingest", "--project", str(project)]


def fingerprint(project: Path) -> dict[str, tuple[object, ...]]:
    loaded = Project.load(project)
    return {name: tuple(loaded.query(sql)[1][0]) for name, sql in FINGERPRINT.items()}


def kill_partway(
    prepare: Callable[[int], Path], command: Callable[[Path], list[str]], delay: float
) -> tuple[Path, bool]:
    """SIGKILL ``command`` ``delay`` seconds into a run on the project ``prepare(attempt)``
    makes. A run that ends sooner (the machine is faster now than when the reference ran) is
    tried again on a fresh project with half the delay, so that a kill does happen. Returns the
    project last tried and whether it was killed."""
    attempt = 0
    while True:
        project = prepare(attempt)
        process = subprocess.Popen(command(project), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return project, True
        if delay < 0.2:
            return project, False
        delay /= 2
        attempt += 1


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("template")
    (folder / "lagoa.yml").write_text(CONFIG)
    subprocess.run(
        [
            sys.executable,
            str(GENERATOR),
            "--rows",
            "1000000",
            "--only",
            "erp_orders",
            "--out",
            str(folder / "samples"),
        ],
        check=True,
        capture_output=True,
    )
    return folder


@pytest.mark.slow
def test_kill_at_several_points_then_rerun_matches_an_uninterrupted_run(
    template: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(template, reference)
    started = time.monotonic()
    subprocess.run(ingest_command(reference), check=True, capture_output=True)
    duration = time.monotonic() - started
    expected = fingerprint(reference)
    with (template / "samples" / "erp_orders.csv").open("rb") as data:
        lines = sum(1 for _ in data) - 1  # no quoted newlines in the generated file
    assert expected["bronze"][0] == lines
    killed_somewhere = 0
    for fraction in (0.15, 0.35, 0.55, 0.75, 0.9):

        def fresh(attempt: int, fraction: float = fraction) -> Path:
            return Path(shutil.copytree(template, tmp_path / f"killed-{fraction}-{attempt}"))

        project, killed = kill_partway(fresh, ingest_command, duration * fraction)
        killed_somewhere += killed
        subprocess.run(ingest_command(project), check=True, capture_output=True)
        assert fingerprint(project) == expected, f"after a kill at {fraction:.0%} of the run"
        # A further run after recovery is a no-op.
        subprocess.run(ingest_command(project), check=True, capture_output=True)
        assert fingerprint(project) == expected
    assert killed_somewhere == 5


def test_a_commit_on_a_stale_table_fails_rather_than_commit_a_batch_twice(tmp_path: Path) -> None:
    from lagoa.core.errors import CommitConflictError
    from lagoa.core.names import BATCHES
    from lagoa.lake.schema import iceberg_schema, iceberg_type

    (tmp_path / "lagoa.yml").write_text("name: stale\n")
    lake = Project.load(tmp_path).lake
    table = lake.create_table("bronze.events", iceberg_schema([("id", iceberg_type("long"))]))
    stale = lake.table("bronze.events")
    assert stale is not None
    lake.commit(table, properties={BATCHES: ["b1"]})
    # Two writers read the ledger before either committed: the second must not land.
    with pytest.raises(CommitConflictError):
        lake.commit(stale, properties={BATCHES: ["b1"]})
    with pytest.raises(CommitConflictError):
        lake.commit(stale, properties={BATCHES: ["b2"]})
    fresh = lake.table("bronze.events")
    assert fresh is not None
    with pytest.raises(CommitConflictError, match="same batches"):
        lake.commit(fresh, properties={BATCHES: ["b1"]})
    lake.commit(fresh, properties={BATCHES: ["b2"]})
    assert lake.committed(lake.table("bronze.events")) == {"b1", "b2"}


def test_a_write_that_fails_or_is_refused_leaves_no_staged_file(tmp_path: Path) -> None:
    from lagoa.core.errors import CommitConflictError
    from lagoa.core.names import BATCHES
    from lagoa.lake.schema import iceberg_schema, iceberg_type

    (tmp_path / "lagoa.yml").write_text("name: staged\n")
    lake = Project.load(tmp_path).lake
    table = lake.create_table("bronze.events", iceberg_schema([("id", iceberg_type("long"))]))
    data = Path(table.location().removeprefix("file://")) / "data"

    def stage(folder: str) -> list[str]:
        path = Path(folder) / "part-1.parquet"
        pq.write_table(pa.table({"id": pa.array([1, 2], pa.int64())}), path)
        return [str(path)]

    with (
        pytest.raises(RuntimeError, match="while writing"),
        lake.write(table, properties={BATCHES: ["b1"]}) as staged,
    ):
        staged.add = stage(staged.folder)
        raise RuntimeError("while writing")
    assert not list(data.glob("commit-*"))
    stale = lake.table("bronze.events")
    assert stale is not None
    with lake.write(table, properties={BATCHES: ["b1"]}) as staged:
        staged.add = stage(staged.folder)
    assert staged.committed is not None and lake.describe(staged.committed).rows == 2
    kept = sorted(data.glob("commit-*"))
    assert len(kept) == 1  # the committed files stay
    with pytest.raises(CommitConflictError), lake.write(stale, properties={BATCHES: ["b2"]}) as staged:
        staged.add = stage(staged.folder)  # another writer committed since `stale` was read
    assert sorted(data.glob("commit-*")) == kept
    assert lake.committed(lake.table("bronze.events")) == {"b1"}
