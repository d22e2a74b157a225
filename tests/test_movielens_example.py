"""The MovieLens zero-ETL example, as its README runs it: the example's own Postgres, loaded with
the CSVs, mirrored by `lagoa cdc`, changed by its stream script, modelled by dbt."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from lagoa.orchestrate.project import Project
from tests.conftest import copy_example

LAGOA = [sys.executable, "-m", "lagoa.cli"]
COUNTS = {"ratings": 100_836, "tags": 3_683, "movies": 9_742, "links": 9_742}
CHECKSUMS = {
    "ratings": "SELECT count(*), sum(user_id), sum(movie_id), sum(rating), sum(CAST(round(extract(epoch FROM rated_at) * 1000000) AS BIGINT)) FROM {}",
    "tags": "SELECT count(*), sum(tag_id), sum(length(tag)), sum(CAST(round(extract(epoch FROM tagged_at) * 1000000) AS BIGINT)) FROM {}",
    "movies": "SELECT count(*), sum(movie_id), sum(length(title)), sum(length(genres)) FROM {}",
    "links": "SELECT count(*), sum(movie_id), sum(tmdb_id), sum(length(imdb_id)) FROM {}",
}
"""The same summary of a table in Postgres and in silver (SQL both engines read alike)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def example() -> Iterator[tuple[Path, dict[str, str]]]:
    # Not under pytest's tmp_path: as root, the server runs as `postgres`, which must reach the
    # folder, and pytest's folders are private to their owner.
    root = Path(tempfile.mkdtemp(prefix="lagoa-ml-"))
    root.chmod(0o755)
    folder = copy_example("movielens_zero_etl", root / "ml")
    script = [sys.executable, str(folder / "postgres.py")]
    started = subprocess.run([*script, "start", "--port", str(_free_port())], capture_output=True, text=True)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        loaded = subprocess.run([*script, "load"], capture_output=True, text=True)
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        dsn = subprocess.run([*script, "dsn"], capture_output=True, text=True, check=True).stdout.strip()
        yield folder, {**os.environ, "MOVIELENS_DSN": dsn}
    finally:
        subprocess.run([*script, "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def lagoa(folder: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*LAGOA, *args, "-p", str(folder)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def assert_same(folder: Path, dsn: str) -> None:
    os.environ["MOVIELENS_DSN"] = dsn
    project = Project.load(folder)
    with psycopg.connect(dsn) as con:
        for table, summary in CHECKSUMS.items():
            source = con.execute(summary.format(table).encode()).fetchone()
            mirrored = project.query(summary.format(f"silver.{table}"))[1][0]
            assert tuple(map(int, mirrored)) == tuple(map(int, source or ())), table


def test_movielens_is_mirrored_and_modelled(example: tuple[Path, dict[str, str]]) -> None:
    folder, env = example
    dsn = env["MOVIELENS_DSN"]
    lagoa(folder, env, "cdc", "setup")
    os.environ["MOVIELENS_DSN"] = dsn
    project = Project.load(folder)
    for table, rows in COUNTS.items():
        assert project.query(f"SELECT count(*) FROM silver.{table}")[1] == [(rows,)]
    assert_same(folder, dsn)

    streamed = subprocess.run(
        [sys.executable, str(folder / "stream_changes.py"), "--seconds", "3", "--rate", "40", "--seed", "3"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert streamed.returncode == 0, streamed.stderr
    out = lagoa(folder, env, "cdc", "run")
    assert "applied" in out
    assert_same(folder, dsn)
    ops = dict(project.query("SELECT lagoa_op, count(*) FROM bronze.ratings__changes GROUP BY 1")[1])
    assert (
        ops["r"] == COUNTS["ratings"] and ops.get("c", 0) > 0 and ops.get("u", 0) > 0 and ops.get("d", 0) > 0
    )

    lagoa(folder, env, "transform")
    with psycopg.connect(dsn) as con:
        (movies,) = con.execute(b"SELECT count(*) FROM movies").fetchone() or (0,)
        (users,) = con.execute(b"SELECT count(DISTINCT user_id) FROM ratings").fetchone() or (0,)
    assert project.query("SELECT count(*) FROM gold.analytics_movie_insights")[1] == [(movies,)]
    assert project.query("SELECT count(*) FROM gold.analytics_user_engagement")[1] == [(users,)]
    status = lagoa(folder, env, "cdc", "status")
    assert "lagoa_movielens" in status
