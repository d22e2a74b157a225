"""A real PostgreSQL server for tests, started as a process (initdb + pg_ctl as the postgres user)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) are needed: install them (e.g. apt-get install "
    "postgresql-15) and make sure a `postgres` system user exists"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(command)]


@contextmanager
def postgres_server(wal_level: str = "logical") -> Iterator[str]:
    """Start a throw-away server; yields a SQLAlchemy URI for its `postgres` database."""
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        raise AssertionError(INSTALL_HINT)
    root = Path(tempfile.mkdtemp(prefix="lagoa-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres(["initdb", "-A", "trust", "-U", "postgres", "-D", str(data)]),
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -k {sockets} -c listen_addresses='' -c wal_level={wal_level} "
        "-c max_replication_slots=10 -c max_wal_senders=10"
    )
    subprocess.run(
        _as_postgres(
            ["pg_ctl", "-D", str(data), "-o", f'"{options}"', "-w", "-l", str(root / "log"), "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@/postgres?host={sockets}&port={port}"
    finally:
        subprocess.run(
            _as_postgres(["pg_ctl", "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)
