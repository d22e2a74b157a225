"""The warehouse from the query side: `lagoa query` and `lagoa shell` read without writing the
file (unless --write), side by side and beside a writer, and a view that cannot be refreshed
never blocks a query of the others."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lagoa.cli import main

LAGOA = [sys.executable, "-m", "lagoa.cli"]
CONFIG = """\
name: warehouse
sources:
  orders:
    format: csv
    path: data/orders*.csv
    primary_key: [order_id]
    columns: {order_id: long, amount: double}
"""
LEADS = """\
  leads:
    format: csv
    path: data/leads*.csv
    primary_key: [lead_id]
    columns: {lead_id: long}
"""


def project(folder: Path, config: str = CONFIG) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "orders1.csv").write_text("order_id,amount\n1,2.5\n2,3.5\n3,1.0\n")
    (folder / "data" / "leads1.csv").write_text("lead_id\n7\n8\n")
    (folder / "lagoa.yml").write_text(config)
    return folder


def lagoa(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LAGOA, *args, "-p", str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_a_table_that_hides_an_entity_blocks_no_query_and_can_be_dropped(tmp_path: Path) -> None:
    folder = project(tmp_path)
    cli = CliRunner()
    assert cli.invoke(main, ["ingest", "-p", str(folder)]).exit_code == 0

    refused = cli.invoke(main, ["query", "create table silver.leads as select 1 as x", "-p", str(folder)])
    assert refused.exit_code == 1 and "pass --write" in refused.stderr
    made = cli.invoke(
        main, ["query", "--write", "create table silver.leads as select 1 as x", "-p", str(folder)]
    )
    assert made.exit_code == 0, made.output
    made = cli.invoke(
        main,
        [
            "query",
            "--write",
            "create view main.total as select sum(amount) as s from silver.orders",
            "-p",
            str(folder),
        ],
    )
    assert made.exit_code == 0, made.output

    # A new entity now has the name of that table: its ingest refreshes the other views.
    (folder / "lagoa.yml").write_text(CONFIG + LEADS)
    ingested = cli.invoke(main, ["ingest", "-p", str(folder)])
    assert ingested.exit_code == 0, ingested.output

    fix = 'lagoa query --write "DROP TABLE silver.leads"'
    found = cli.invoke(main, ["query", "--csv", "select count(*) as n from silver.orders", "-p", str(folder)])
    assert found.exit_code == 0 and found.stdout.splitlines() == ["n", "3"], found.output
    assert fix not in found.stderr  # a query sees the views of the tables it reads, only
    leads = cli.invoke(
        main, ["query", "--csv", "select lead_id from silver.leads order by 1", "-p", str(folder)]
    )
    assert leads.exit_code == 0 and leads.stdout.splitlines() == ["lead_id", "7", "8"], leads.output
    assert fix in leads.stderr  # the view that failed, named with its fix
    everything = cli.invoke(main, ["query", "--csv", "select count(*) from main.total", "-p", str(folder)])
    assert everything.exit_code == 0 and fix in everything.stderr  # main.total may read any view
    total = cli.invoke(main, ["query", "--csv", "select s from total", "-p", str(folder)])
    assert total.exit_code == 0 and total.stdout.splitlines() == ["s", "7.0"], total.output

    dropped = cli.invoke(main, ["query", "--write", "DROP TABLE silver.leads", "-p", str(folder)])
    assert dropped.exit_code == 0, dropped.output
    after = cli.invoke(
        main, ["query", "--write", "--csv", "select count(*) as n from silver.leads", "-p", str(folder)]
    )
    assert after.exit_code == 0 and after.stdout.splitlines() == ["n", "2"], after.output
    assert "warning" not in after.stderr  # the view over the lake is back


HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.read()
"""


def test_read_only_queries_run_side_by_side_and_beside_a_writer(tmp_path: Path) -> None:
    folder = project(tmp_path)
    assert lagoa(folder, "ingest").returncode == 0
    queries = [
        subprocess.Popen(
            [*LAGOA, "query", "--csv", "select count(*) as n from silver.orders", "-p", str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [q.communicate(timeout=600) for q in queries]
    assert [(q.returncode, out) for q, (out, _) in zip(queries, outputs, strict=True)] == [(0, "n\n3\n")] * 4

    # Another process has the warehouse open for writing: queries read the lake all the same.
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder / ".lagoa" / "warehouse.duckdb")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "held"
        beside = lagoa(folder, "query", "--csv", "select count(*) as n from silver.orders")
        assert beside.returncode == 0 and beside.stdout == "n\n3\n", beside.stderr
        assert "is being written by another process" in beside.stderr
    finally:
        writer.communicate(timeout=60)


STRESS = """
import faulthandler, sys, threading
from pathlib import Path
from lagoa.engine.connection import connect
from lagoa.engine.warehouse import warehouse_lock
from lagoa.orchestrate.project import Project

faulthandler.dump_traceback_later(float(sys.argv[2]), exit=True)  # a hang shows every stack
project = Project.load(Path(sys.argv[1]))
warehouse, lake, rounds = project.warehouse, project.lake, int(sys.argv[3])
path = warehouse.path


def refresh():
    assert warehouse.refresh(lake) == len(lake.identifiers())


def load():
    con = connect()
    assert con.execute("select count(*) from duckdb_extensions() where loaded and extension_name = 'iceberg'").fetchone() == (1,)
    con.close()


def query():
    assert project.query("select count(*) from silver.orders")[1] == [(3,)]


def publish():  # as gold and dataset publishes read the warehouse
    with warehouse_lock(path):
        con = connect()
        con.execute(f"ATTACH '{path}' AS warehouse (READ_ONLY)")
        assert con.execute("select count(*) from warehouse.silver.orders").fetchone() == (3,)
        con.close()


def dbt():  # as dbt-duckdb: one connection to the file, a cursor per thread
    with warehouse_lock(path):
        con = warehouse.connect()
        cursors = [con.cursor() for _ in range(3)]
        threads = [threading.Thread(target=lambda c=c: c.execute("select count(*) from silver.orders").fetchall()) for c in cursors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for cursor in cursors:
            cursor.close()
        con.close()


done = []
failed = []
threading.excepthook = lambda args: failed.append(f"{args.exc_type.__name__}: {args.exc_value}")


def loop(work):
    for _ in range(rounds):
        work()
        done.append(work.__name__)

workers = [threading.Thread(target=loop, args=(w,)) for w in (refresh, load, query, publish, dbt) for _ in range(3)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print(len(done), *failed, sep=chr(10))
"""


def test_many_threads_refreshing_loading_and_querying_at_once_never_hang(tmp_path: Path) -> None:
    folder = project(tmp_path, CONFIG + LEADS)
    assert lagoa(folder, "ingest").returncode == 0
    rounds = 8
    stressed = subprocess.run(
        [sys.executable, "-c", STRESS, str(folder), "540", str(rounds)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert stressed.returncode == 0, stressed.stderr[-5000:]
    assert stressed.stdout.splitlines() == [str(5 * 3 * rounds)]  # every round of every thread, no error


def test_the_shell_reads_unless_asked_to_write(tmp_path: Path) -> None:
    folder = project(tmp_path)
    cli = CliRunner()
    assert cli.invoke(main, ["ingest", "-p", str(folder)]).exit_code == 0
    session = "create table silver.notes as select 1 as x;\nselect count(*) as n from silver.orders;\n"
    read = cli.invoke(main, ["shell", "-p", str(folder)], input=session)
    assert read.exit_code == 0, read.output
    assert (
        "read-only" in read.stdout
        and "pass --write" in read.stdout
        and re.search(r"^\s*3\s*$", read.stdout, re.M)
    )
    written = cli.invoke(main, ["shell", "--write", "-p", str(folder)], input=session)
    assert written.exit_code == 0 and "pass --write" not in written.stdout, written.output
    notes = cli.invoke(main, ["query", "--csv", "select x from silver.notes", "-p", str(folder)])
    assert notes.stdout.splitlines() == ["x", "1"], notes.output


def test_a_refresh_with_nothing_changed_leaves_the_file_alone_and_one_after_a_writer_restores(
    tmp_path: Path,
) -> None:
    from lagoa.orchestrate.project import Project

    folder = project(tmp_path)
    cli = CliRunner()
    assert cli.invoke(main, ["ingest", "-p", str(folder)]).exit_code == 0
    loaded = Project.load(folder)
    warehouse = loaded.workspace.warehouse
    views = warehouse.refresh(loaded.lake)
    before = warehouse.path.stat()
    fresh = Project.load(folder)  # another process, as the next run is
    assert fresh.workspace.warehouse.refresh(fresh.lake) == views
    after = warehouse.path.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)  # not even opened

    dropped = cli.invoke(main, ["query", "--write", "DROP VIEW silver.orders", "-p", str(folder)])
    assert dropped.exit_code == 0, dropped.output
    again = Project.load(folder)
    again.workspace.warehouse.refresh(again.lake)  # the file changed since: every view is put back
    import duckdb

    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        names = {
            row[0]
            for row in con.execute(
                "select view_name from duckdb_views() where schema_name = 'silver'"
            ).fetchall()
        }
    assert "orders" in names


def test_a_query_head_counts_the_rows_it_does_not_show(tmp_path: Path) -> None:
    from lagoa.orchestrate.project import Project

    loaded = Project.load(project(tmp_path))
    loaded.ingest()
    for rows in (2, 3, 4, 50_000):
        sql = f"select range as n from range({rows})"
        columns, head, total = loaded.query_head(sql, 3)
        assert (columns, head, total) == (["n"], [(n,) for n in range(min(rows, 3))], rows)
    # Statements a subquery cannot wrap, and one with no rows.
    _, head, total = loaded.query_head("describe silver.orders", 1)
    assert total > 1 and len(head) == 1
    assert loaded.query_head("select * from silver.orders where false", 3)[1:] == ([], 0)


@pytest.mark.parametrize(
    ("sql", "reads"),
    [
        ("select * from silver.orders o join gold.Daily d on o.id = d.id", {"silver.orders", "gold.daily"}),
        ("with recent as (select * from silver.orders) select * from recent", {"silver.orders"}),
        ("select 1 where 2 in (select x from bronze.t)", {"bronze.t"}),
        ("select * from memory.silver.orders", {"silver.orders"}),
        ("select 42", set()),
        ("select * from orders", None),  # no schema: a dbt model, a file, anything
        ("select * from main.total", None),  # a dbt model's view may read any table
        ("select * from warehouse.silver.orders", None),
        ("select * from information_schema.tables", None),
        ("select * from duckdb_tables()", None),
        ("show tables", None),
        ("select 1; select * from silver.orders", None),
        ("pivot silver.orders on status using sum(amount)", None),
        ("copy (select * from silver.orders) to 'out.csv'", None),
        ("not sql at all", None),
    ],
)
def test_a_query_reads_only_the_lake_tables_it_names_when_it_names_nothing_else(
    sql: str, reads: set[str] | None
) -> None:
    from lagoa.engine.named import reads_only

    found = reads_only(sql, ("bronze", "silver", "gold"))
    assert (None if found is None else set(found)) == reads
