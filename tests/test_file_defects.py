"""File sources end to end: JSON arrays, over-long lines, encodings, empty keys, ties, declared
columns, and raw landing after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xxhash

from lagoa.core.errors import ConfigError, SourceError
from lagoa.orchestrate.project import Project
from lagoa.sources.files import STALE_COPY, content_hash
from tests.conftest import ORDERS_CONFIG, MakeProject, count

HEADER = "order_id,amount,ordered_at,updated_at\n"
GOOD = "1,10.0,2024-06-01 10:00:00,2024-06-01 10:00:00\n2,20.0,2024-06-01 11:00:00,2024-06-01 11:00:00\n"
EVENTS = """
name: test
sources:
  events:
    format: {format}
    path: data/events.{format}
    primary_key: [id]
"""


def quarantine_reasons(project: Project, table: str) -> list[str]:
    _, rows = project.query(f"select _lagoa_reason from silver.{table}__quarantine order by 1")
    return [row[0] for row in rows]


def test_a_json_array_of_objects_with_differing_keys_loads(make_project: MakeProject) -> None:
    records = [
        {"id": 1, "name": "a"},
        {"id": 2, "kind": {"nested": [1, 2]}},
        {"id": 3, "name": None, "score": 2.5},
    ]
    project = make_project(EVENTS.format(format="json"), {"data/events.json": json.dumps(records)})
    project.ingest()
    _, rows = project.query("select id, name, kind, score from silver.events order by id")
    assert rows == [(1, "a", None, None), (2, None, '{"nested":[1,2]}', None), (3, None, None, 2.5)]
    assert quarantine_reasons(project, "events") == []


def test_a_json_array_loads_without_a_primary_key(make_project: MakeProject) -> None:
    config = EVENTS.format(format="json").replace("    primary_key: [id]\n", "")
    records = [{"id": 1, "name": "a"}, {"id": 1, "tags": ["x"]}, {"name": "c"}]
    project = make_project(config, {"data/events.json": json.dumps(records)})
    project.ingest()
    _, rows = project.query("select id, name, tags from silver.events order by name nulls first")
    assert rows == [(1, None, '["x"]'), (1, "a", None), (None, "c", None)]
    assert quarantine_reasons(project, "events") == []


def test_a_json_array_element_that_is_not_an_object_is_quarantined(make_project: MakeProject) -> None:
    text = '[{"id": 1, "name": "a"}, "loose text", [1, 2], {"id": 2, "name": "b"}]'
    project = make_project(EVENTS.format(format="json"), {"data/events.json": text})
    project.ingest()
    assert count(project, "select count(*) from silver.events") == 2
    assert quarantine_reasons(project, "events") == ["not a JSON object", "not a JSON object"]
    _, raws = project.query("select _lagoa_raw from silver.events__quarantine order by 1")
    assert sorted(r[0] for r in raws) == ['"loose text"', "[1,2]"]


def test_json_lines_still_load_and_quarantine_an_invalid_line(make_project: MakeProject) -> None:
    lines = '{"id": 1, "name": "a"}\n{"id": 2, "name": \n{"id": 3, "extra": true}\n'
    project = make_project(EVENTS.format(format="jsonl"), {"data/events.jsonl": lines})
    project.ingest()
    _, rows = project.query("select id, name, extra from silver.events order by id")
    assert rows == [(1, "a", None), (3, None, True)]
    assert quarantine_reasons(project, "events") == ["invalid JSON"]


@pytest.mark.parametrize("before", [0, 1, 200])
def test_an_over_long_line_near_the_top_is_quarantined_and_the_rest_kept(
    make_project: MakeProject, before: int
) -> None:
    rows = "".join(f"{i},1.0,2024-06-01 10:00:00,2024-06-01 10:00:00\n" for i in range(10, 10 + before))
    huge = "3," + "9" * (3 << 20) + ",2024-06-01 10:00:00,2024-06-01 10:00:00\n"
    project = make_project(ORDERS_CONFIG, {"data/orders.csv": HEADER + rows + huge + GOOD})
    project.ingest()
    assert count(project, "select count(*) from silver.orders") == before + 2
    reasons = quarantine_reasons(project, "orders")
    assert len(reasons) == 1
    assert reasons[0].startswith(f"line {before + 2}: line size over maximum")


def test_an_over_long_line_keeps_a_sniffed_dialect(make_project: MakeProject) -> None:
    config = ORDERS_CONFIG.replace("    columns:", "    csv: {max_line_size: 1000}\n    columns:")
    text = (HEADER + "3;'" + "x" * 2000 + "';a;b\n" + GOOD).replace(",", ";")
    project = make_project(config, {"data/orders.csv": text})
    project.ingest()
    _, rows = project.query("select order_id, amount from silver.orders order by 1")
    assert rows == [(1, 10.0), (2, 20.0)]
    assert len(quarantine_reasons(project, "orders")) == 1


@pytest.mark.parametrize(
    ("encoding", "named", "fix"),
    [
        ("utf-16", "UTF-16LE", "csv.encoding: utf-16"),
        ("utf-16-be", "UTF-16BE", "convert it to UTF-8"),
        ("utf-16-le", "UTF-16LE", "csv.encoding: utf-16"),
        ("utf-32", "UTF-32LE", "convert it to UTF-8"),
    ],
)
def test_a_utf16_or_utf32_file_is_refused_naming_its_encoding(
    make_project: MakeProject, encoding: str, named: str, fix: str
) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders.csv": (HEADER + GOOD).encode(encoding)})
    with pytest.raises(SourceError) as info:
        project.ingest()
    assert f"is {named}, not utf-8" in str(info.value)
    assert fix in (info.value.hint or "")
    assert "delimiter" not in str(info.value) + (info.value.hint or "")
    assert project.lake.table("bronze.orders") is None


def test_a_utf16_file_loads_with_encoding_utf16(make_project: MakeProject) -> None:
    config = ORDERS_CONFIG.replace("    columns:", "    csv: {encoding: utf-16}\n    columns:")
    project = make_project(config, {"data/orders.csv": (HEADER + GOOD).encode("utf-16")})
    project.ingest()
    assert count(project, "select count(*) from silver.orders") == 2


def test_a_utf16_json_lines_file_is_refused_naming_its_encoding(make_project: MakeProject) -> None:
    lines = '{"id": 1}\n{"id": 2}\n'.encode("utf-16")
    project = make_project(EVENTS.format(format="jsonl"), {"data/events.jsonl": lines})
    with pytest.raises(SourceError, match="is UTF-16LE, not utf-8"):
        project.ingest()


def test_a_negative_max_line_size_is_a_config_error(make_project: MakeProject) -> None:
    config = ORDERS_CONFIG.replace("    columns:", "    csv: {max_line_size: -1}\n    columns:")
    with pytest.raises(ConfigError, match=r"sources\.orders\.csv\.max_line_size"):
        make_project(config, {"data/orders.csv": HEADER + GOOD})


PUT_FILE = """
import sys
from pathlib import Path
from lagoa.storage.local import LocalStorage
LocalStorage(Path(sys.argv[1])).put_file(sys.argv[2], sys.stdin.buffer)
"""


def test_a_raw_copy_killed_midway_is_landed_again_and_its_leftover_cleaned(
    make_project: MakeProject,
) -> None:
    rows = "".join(f"{i},1.5,2024-06-01 10:00:00,2024-06-01 10:00:00\n" for i in range(150_000))
    data = (HEADER + rows).encode()
    project = make_project(ORDERS_CONFIG, {"data/orders.csv": data})
    batch = content_hash(project.root / "data" / "orders.csv")
    root = Path(project.storage.location(""))
    folder = root / "raw" / "orders" / "2020-01-01" / batch
    # A real landing of the file's bytes, killed by SIGKILL once part of them is on disk.
    writer = subprocess.Popen(
        [sys.executable, "-c", PUT_FILE, str(root), f"raw/orders/2020-01-01/{batch}/orders.csv"],
        stdin=subprocess.PIPE,
    )
    assert writer.stdin is not None
    writer.stdin.write(data[: 5 << 20])
    writer.stdin.flush()
    deadline = time.monotonic() + 120
    while not [p for p in folder.glob(".orders.csv.*.tmp") if p.stat().st_size > 0]:
        assert writer.poll() is None and time.monotonic() < deadline, "the copy never started"
        time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdin.close()
    (leftover,) = folder.glob(".orders.csv.*.tmp")

    project.ingest()
    landed = list((root / "raw" / "orders").glob(f"*/{batch}/orders.csv"))
    assert len(landed) == 1 and landed[0].read_bytes() == data
    assert leftover.exists()  # recent: it might be another ingest's copy in progress

    old = time.time() - 2 * STALE_COPY
    os.utime(leftover, (old, old))
    (project.root / "data" / "orders_2.csv").write_text(HEADER + GOOD)
    project.ingest()
    assert not leftover.exists()
    assert count(project, "select count(*) from silver.orders") == 150_000


def test_rows_with_an_empty_primary_key_are_quarantined_with_the_reason(make_project: MakeProject) -> None:
    empty = "".join(f",{i}.0,2024-06-01 10:00:00,2024-06-01 10:00:00\n" for i in range(3))
    project = make_project(ORDERS_CONFIG, {"data/orders.csv": HEADER + GOOD + empty})
    project.ingest()
    assert count(project, "select count(*) from bronze.orders") == 5
    _, rows = project.query("select order_id from silver.orders order by 1")
    assert rows == [(1,), (2,)]
    assert quarantine_reasons(project, "orders") == ["empty primary key `order_id`"] * 3
    _, raws = project.query("select _lagoa_raw from silver.orders__quarantine order by 1")
    assert [json.loads(r[0])["amount"] for r in raws] == [0.0, 1.0, 2.0]


def test_a_composite_key_with_every_part_empty_is_quarantined(make_project: MakeProject) -> None:
    config = EVENTS.format(format="jsonl").replace("[id]", "[id, region]")
    lines = [
        {"id": "a", "region": "eu", "n": 1},
        {"id": "", "region": "", "n": 2},
        {"id": None, "region": None, "n": 3},
        {"n": 4},
        {"id": "", "region": "us", "n": 5},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines)
    project = make_project(config, {"data/events.jsonl": text})
    project.ingest()
    _, rows = project.query("select n from silver.events order by n")
    assert rows == [(1,), (5,)]  # a key with one part empty is still a key
    assert quarantine_reasons(project, "events") == ["empty primary key `id`, `region`"] * 3


@pytest.mark.parametrize("by", ["modification time", "name"])
def test_a_tie_within_one_ingest_goes_to_the_newer_file(make_project: MakeProject, by: str) -> None:
    # Three versions of key 1 with the same ordering value, written newest last in the reverse
    # order of their content hashes, so that the hash cannot be what decides.
    texts = [HEADER + f"1,{amount},2024-06-01 10:00:00,2024-06-01 12:00:00\n" for amount in (10, 20, 30)]
    newest_last = sorted(texts, key=lambda text: xxhash.xxh3_128(text.encode()).hexdigest(), reverse=True)
    project = make_project(ORDERS_CONFIG)
    (project.root / "data").mkdir()
    for position, text in enumerate(newest_last):
        # by name: equal times, later names; by time: later times, earlier names
        name = f"orders_{position}.csv" if by == "name" else f"orders_{'cba'[position]}.csv"
        moment = 1_700_000_000 + (0 if by == "name" else position * 60)
        path = project.root / "data" / name
        path.write_text(text)
        os.utime(path, (moment, moment))
    project.ingest()
    _, rows = project.query("select amount from silver.orders")
    assert rows == [(float(newest_last[-1].splitlines()[1].split(",")[1]),)]


@pytest.mark.parametrize(
    ("change", "setting", "column"),
    [
        (("      amount: double", "      ammount: double"), "columns.ammount", "ammount"),
        (("ordering: updated_at", "ordering: updatedat"), "ordering", "updatedat"),
        (('["day(ordered_at)"]', '["day(orderd_at)"]'), "partition_by", "orderd_at"),
    ],
)
def test_a_named_column_missing_from_the_data_is_a_clear_error_before_anything_lands(
    make_project: MakeProject, change: tuple[str, str], setting: str, column: str
) -> None:
    project = make_project(ORDERS_CONFIG.replace(*change), {"data/orders.csv": HEADER + GOOD})
    with pytest.raises(ConfigError) as info:
        project.ingest()
    message = str(info.value)
    assert f"key `sources.orders.{setting}`: column `{column}` is not in the data" in message
    assert info.value.hint == "the data has: order_id, amount, ordered_at, updated_at"
    assert project.lake.table("bronze.orders") is None
    assert not list((Path(project.storage.location("raw"))).glob("**/*.csv"))


def test_a_declared_column_that_earlier_files_had_may_be_absent_from_a_new_file(
    make_project: MakeProject,
) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders_1.csv": HEADER + GOOD})
    project.ingest()
    (project.root / "data" / "orders_2.csv").write_text(
        "order_id,ordered_at,updated_at\n3,2024-06-02 10:00:00,2024-06-02 10:00:00\n"
    )
    project.ingest()
    _, rows = project.query("select order_id, amount from silver.orders order by 1")
    assert rows == [(1, 10.0), (2, 20.0), (3, None)]


def test_an_over_long_line_with_the_dialect_set_in_lagoa_yml(make_project: MakeProject) -> None:
    settings = "    csv: {delimiter: '|', header: true, quote: '\"', max_line_size: 1000}\n    columns:"
    text = (HEADER + "3|" + "9" * 2000 + "|a|b\n" + GOOD).replace(",", "|")
    project = make_project(ORDERS_CONFIG.replace("    columns:", settings), {"data/orders.csv": text})
    project.ingest()
    assert count(project, "select count(*) from silver.orders") == 2
    assert quarantine_reasons(project, "orders")[0].startswith("line 2: line size over maximum")


def test_a_json_file_without_the_primary_key_names_the_fields_found_not_a_delimiter(
    make_project: MakeProject,
) -> None:
    project = make_project(EVENTS.format(format="json"), {"data/events.json": '[{"ident": 1, "name": "a"}]'})
    with pytest.raises(SourceError) as info:
        project.ingest()
    assert "has no column id (found: ident, name)" in str(info.value)
    assert "delimiter" not in (info.value.hint or "")


@pytest.mark.parametrize("format", ["jsonl", "json"])
def test_json_columns_come_in_the_order_of_the_first_records_on_every_load(
    tmp_path: Path, format: str
) -> None:
    """Later records list the same keys in another order, and one key only they have: the
    columns are the first records' keys in their order, then the late key, on every load."""
    first = [{"id": i, "zone": "z", "amount": i * 2, "kind": "a"} for i in range(40_000)]
    later = [{"kind": "b", "amount": i, "id": i, "zone": "y", "late": True} for i in range(40_000, 120_000)]
    records = first + later
    text = "\n".join(json.dumps(r) for r in records) if format == "jsonl" else json.dumps(records)
    orders = []
    for attempt in range(3):
        folder = tmp_path / f"load-{attempt}"
        (folder / "data").mkdir(parents=True)
        (folder / "lagoa.yml").write_text(EVENTS.format(format=format))
        (folder / "data" / f"events.{format}").write_text(text)
        project = Project.load(folder)
        project.ingest()
        columns, _ = project.query("select * from bronze.events limit 0")
        orders.append([c for c in columns if not c.startswith("_lagoa")])
    assert orders == [["id", "zone", "amount", "kind", "late"]] * 3
