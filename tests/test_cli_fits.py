"""Output that fits: each listing command, run in a pseudo-terminal 80 columns wide and piped,
shows run ids, states and table names whole, on lines no wider than the terminal; short run ids
are accepted where full ones are; `lagoa query` shows at most --limit rows."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from lagoa.orchestrate.build import short_run_id
from lagoa.orchestrate.project import Project

PROJECT = """
name: fits
sources:
  customer_orders_from_the_erp_system:
    format: csv
    path: data/orders*.csv
    primary_key: [order_id]
    columns: {order_id: long, amount: double, note: string}
  missing_partner_feed: {format: csv, path: nowhere/*.csv}
domains:
  orders: {sources: [customer_orders_from_the_erp_system]}
  partners: {sources: [missing_partner_feed]}
"""
ORDERS = "order_id,amount,note\n" + "".join(f"{i},{i * 1.5},{'a long note ' * 6}{i}\n" for i in range(1, 61))
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MOVES = re.compile(r"\x1b\[\d*[AK]|\r(?!\n)")
"""Cursor moves that start another line on the screen (a live view redrawn: up, erase, return)."""
WIDTH = 80


def _environment() -> dict[str, str]:
    """This process's environment without a width set: the terminal's (or none) decides."""
    return {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}


def in_terminal(args: list[str], cwd: Path) -> str:
    """What ``lagoa <args>`` prints in a pseudo-terminal of WIDTH columns, without colour codes."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, WIDTH, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "lagoa.cli", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=cwd,
        env={**_environment(), "TERM": "xterm"},
        close_fds=True,
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        assert ready, f"lagoa {' '.join(args)} printed nothing for 120 s"
        try:
            data = os.read(leader, 65536)
        except OSError:  # the other end closed: the process is done
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert process.wait(timeout=120) in (0, 1), b"".join(chunks).decode(errors="replace")
    return ANSI.sub("", MOVES.sub("\n", b"".join(chunks).decode())).replace("\r\n", "\n")


def piped(args: list[str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lagoa.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=300,
    )
    assert done.returncode in (0, 1, 2), done.stderr  # 2: a usage error, said on stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("fits")
    (root / "lagoa.yml").write_text(PROJECT)
    (root / "data").mkdir()
    (root / "data" / "orders_1.csv").write_text(ORDERS)
    loaded = Project.load(root)
    for domains in (["orders"], ["partners"], ["orders", "partners"]):
        loaded.run(domains)
    return loaded


@pytest.mark.parametrize("show", [in_terminal, piped], ids=["terminal", "piped"])
def test_listings_show_ids_states_and_names_whole_within_80_columns(project: Project, show: object) -> None:
    assert callable(show)
    runs = project.state.runs()
    assert {r.state for r in runs} == {"succeeded", "failed"}
    listed = show(["runs"], project.root)
    for run in runs:
        found = re.search(
            rf"\b{short_run_id(run.run_id)}\s+{re.escape(run.pipeline)}\s+{run.state}\s", listed
        )
        assert found, listed
    failed = next(r for r in runs if r.state == "failed")
    shown = show(["run", "show", short_run_id(failed.run_id)], project.root)
    assert f"run {failed.run_id}: {failed.pipeline}, failed" in shown
    record = project.state.run(failed.run_id)
    assert record is not None
    for attempt in record.attempts:
        assert re.search(rf"\b{attempt.task}\s+\S+\s+{attempt.state}\s", shown), shown
    tables = show(["tables"], project.root)
    for info in project.tables():
        assert re.search(rf"\b{re.escape(info.identifier)}\s+{info.rows}\s", tables), tables
    queried = show(
        ["query", "select * from silver.customer_orders_from_the_erp_system order by order_id"], project.root
    )
    assert "… 20 more rows" in queried  # 60 rows, 40 shown
    assert "-[ row 40 ]" in queried and "-[ row 41 ]" not in queried  # too wide for 80 columns: vertical
    for output in (listed, shown, tables, queried):
        wide = [line for line in output.splitlines() if len(line) > WIDTH]
        assert not wide, "\n".join(wide)


def test_a_short_id_naming_several_runs_is_refused_with_them(project: Project) -> None:
    ids = [r.run_id for r in project.state.runs()]
    common = ids[0][
        : next(i for i in range(len(ids[0])) if any(len(r) <= i or r[i] != ids[0][i] for r in ids))
    ]
    assert len(ids) > 1 and common.startswith("run-")
    shown = piped(["run", "show", common], project.root)
    assert f"`{common}` names {len(ids)} runs" in shown
    assert piped(["run", "show", "ffffffffff"], project.root).startswith("error: no run `ffffffffff`")
