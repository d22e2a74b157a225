"""Malformed inputs end in a clear error or quarantined rows, never a traceback or lost rows."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lagoa.core.errors import SourceError
from tests.conftest import ORDERS_CONFIG, MakeProject, count

HEADER = "order_id,amount,ordered_at,updated_at\n"
GOOD = "1,10.0,2024-06-01 10:00:00,2024-06-01 10:00:00\n2,20.0,2024-06-01 11:00:00,2024-06-01 11:00:00\n"


def landed(project_files: dict[str, str | bytes], make_project: MakeProject) -> tuple[int, int, list[str]]:
    project = make_project(ORDERS_CONFIG, project_files)
    project.ingest()
    _, rows = project.query("select _lagoa_reason from silver.orders__quarantine")
    return count(project, "select count(*) from silver.orders"), len(rows), [r[0] for r in rows]


def test_truncated_file_quarantines_the_cut_line(make_project: MakeProject) -> None:
    good, bad, reasons = landed({"data/orders.csv": HEADER + GOOD + "3,30.0,2024-06-0"}, make_project)
    assert (good, bad) == (2, 1)
    assert "ordered_at" in reasons[0] or "missing columns" in reasons[0]


def test_wrong_column_count_is_quarantined_with_line(make_project: MakeProject) -> None:
    text = HEADER + GOOD + "3,30.0\n4,40.0,2024-06-01 10:00:00,2024-06-01 10:00:00,extra\n"
    good, bad, reasons = landed({"data/orders.csv": text}, make_project)
    assert (good, bad) == (2, 2)
    assert all(r.startswith("line ") for r in reasons)


def test_wrong_delimiter_is_a_clear_error(make_project: MakeProject) -> None:
    config = ORDERS_CONFIG.replace("    columns:", "    csv: {delimiter: ','}\n    columns:")
    text = (HEADER + GOOD).replace(",", ";")
    project = make_project(config, {"data/orders.csv": text})
    with pytest.raises(SourceError) as info:
        project.ingest()
    message = str(info.value)
    assert "has no column order_id" in message
    assert "delimiter" in message


def test_binary_garbage_is_a_clear_error(make_project: MakeProject) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders.csv": bytes(range(256)) * 400})
    with pytest.raises(SourceError, match=r"orders\.csv"):
        project.ingest()


def test_ten_megabyte_line_is_quarantined_and_the_rest_kept(make_project: MakeProject) -> None:
    huge = "3," + "9" * (10 << 20) + ",2024-06-01 10:00:00,2024-06-01 10:00:00\n"
    good, bad, reasons = landed({"data/orders.csv": HEADER + GOOD + huge}, make_project)
    assert (good, bad) == (2, 1)
    assert reasons[0].startswith("line 4: line size over maximum")


def test_long_line_after_the_sniffed_sample_is_quarantined(make_project: MakeProject) -> None:
    rows = "".join(f"{i},1.0,2024-06-01 10:00:00,2024-06-01 10:00:00\n" for i in range(10, 30_000))
    huge = "3," + "9" * (3 << 20) + ",2024-06-01 10:00:00,2024-06-01 10:00:00\n"
    good, bad, reasons = landed({"data/orders.csv": HEADER + rows + huge + GOOD}, make_project)
    assert (good, bad) == (29_992, 1)
    assert "line" in reasons[0]


def test_invalid_utf8_is_quarantined(make_project: MakeProject) -> None:
    text = (HEADER + GOOD).encode() + b"3,\xff\xfe,2024-06-01 10:00:00,2024-06-01 10:00:00\n"
    good, bad, reasons = landed({"data/orders.csv": text}, make_project)
    assert (good, bad) == (2, 1)
    assert "invalid encoding" in reasons[0]


def test_empty_file_is_skipped_with_reason(make_project: MakeProject) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders_a.csv": HEADER + GOOD, "data/orders_b.csv": ""})
    summary = project.ingest()
    assert "data/orders_b.csv: empty file" in summary.sources[0].skipped_files
    assert count(project, "select count(*) from silver.orders") == 2


def test_header_only_file_lands_nothing(make_project: MakeProject) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders_a.csv": HEADER + GOOD, "data/orders_b.csv": HEADER})
    summary = project.ingest()
    assert summary.sources[0].bronze_rows == 2
    assert count(project, "select count(*) from silver.orders") == 2
    assert project.ingest().sources[0].bronze_rows == 0


def test_broken_json_lines_are_quarantined(make_project: MakeProject) -> None:
    config = """
    name: test
    sources:
      events:
        format: jsonl
        path: data/events.jsonl
        primary_key: [id]
    """
    lines = '{"id": 1, "kind": "a"}\n{"id": 2, "kind": \n[1, 2]\n\n{"id": 3, "kind": "c"}\n'
    project = make_project(config, {"data/events.jsonl": lines})
    project.ingest()
    assert count(project, "select count(*) from silver.events") == 2
    _, rows = project.query("select _lagoa_reason from silver.events__quarantine order by 1")
    assert [r[0] for r in rows] == ["invalid JSON", "not a JSON object"]


def test_truncated_json_array_is_a_clear_error(make_project: MakeProject) -> None:
    config = "name: test\nsources:\n  events:\n    format: json\n    path: data/events.json\n"
    project = make_project(config, {"data/events.json": '[{"id": 1}, {"id": 2'})
    with pytest.raises(SourceError, match="not a valid JSON array"):
        project.ingest()


def test_cli_prints_one_line_error_not_a_traceback(make_project: MakeProject) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders.csv": bytes(range(256)) * 400})
    result = subprocess.run(
        [sys.executable, "-m", "lagoa.cli", "ingest", "--project", str(project.root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: source `orders`")
    assert "Traceback" not in result.stderr
