"""A local PostgreSQL holding MovieLens: the operational database this example mirrors.

    python postgres.py start [--port 55432]   # initdb once, then start with logical replication on
    python postgres.py load [--reset]         # create the four tables and COPY data/*.csv into them
    python postgres.py dsn                    # print the connection URI (for MOVIELENS_DSN)
    python postgres.py stop

The cluster lives in .lagoa/postgres/ and listens only on a Unix socket in that folder, so it
never clashes with another server on the machine. It needs the PostgreSQL server binaries
(initdb, pg_ctl) on PATH; as root, they run as the `postgres` system user. `start` and `dsn`
print the URI on stdout and everything else on stderr, so `export MOVIELENS_DSN=$(python
postgres.py dsn)` works.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
ROOT = HERE / ".lagoa" / "postgres"
CLUSTER, SOCKETS, LOG, PORT_FILE = ROOT / "data", ROOT / "run", ROOT / "server.log", ROOT / "port"
DATA = HERE / "data"
DATABASE = "movielens"
TABLES = ("movies", "links", "ratings", "tags")
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) are not on PATH: install them, e.g. "
    "`apt-get install postgresql-15` (then add /usr/lib/postgresql/15/bin to PATH) or "
    "`brew install postgresql@15`"
)

SCHEMA = """
CREATE TABLE movies (movie_id int PRIMARY KEY, title text NOT NULL, genres text NOT NULL);
CREATE TABLE links (movie_id int PRIMARY KEY, imdb_id text, tmdb_id int);
CREATE TABLE ratings (
    user_id int, movie_id int, rating numeric(2,1) NOT NULL, rated_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, movie_id)
);
CREATE TABLE tags (
    tag_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id int, movie_id int, tag text NOT NULL, tagged_at timestamptz NOT NULL
);
"""

# Each CSV is copied as it is into a temporary table `csv` (its columns below, numbered by `line`
# in file order), then typed into its table: unix `timestamp`s become timestamptz, and tags get
# their ids in file order.
LOADS = {
    "movies": ("movie_id int, title text, genres text", "SELECT movie_id, title, genres"),
    "links": ("movie_id int, imdb_id text, tmdb_id int", "SELECT movie_id, imdb_id, tmdb_id"),
    "ratings": (
        "user_id int, movie_id int, rating numeric(2,1), ts bigint",
        "SELECT user_id, movie_id, rating, to_timestamp(ts)",
    ),
    "tags": (
        "user_id int, movie_id int, tag text, ts bigint",
        "SELECT user_id, movie_id, tag, to_timestamp(ts)",
    ),
}


def say(message: str) -> None:
    print(message, file=sys.stderr)


def as_postgres(command: list[str]) -> list[str]:
    """The command as the `postgres` user when we are root (Postgres refuses to run as root)."""
    if os.geteuid() != 0:
        return command
    return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)]


def pg(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(as_postgres(list(args)), check=check, capture_output=True, text=True)


def port() -> int:
    if not PORT_FILE.is_file():
        sys.exit("no cluster yet: run `python postgres.py start` first")
    return int(PORT_FILE.read_text().strip())


def dsn(database: str = DATABASE) -> str:
    return f"postgresql://postgres@/{database}?host={SOCKETS}&port={port()}"


def running() -> bool:
    return CLUSTER.is_dir() and pg("pg_ctl", "-D", str(CLUSTER), "status", check=False).returncode == 0


def start(wanted_port: int) -> None:
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        sys.exit(INSTALL_HINT)
    if len(str(SOCKETS / f".s.PGSQL.{wanted_port}")) > 100:
        sys.exit(f"the socket path under {SOCKETS} is too long for Unix sockets: move the example higher up")
    if not CLUSTER.is_dir():
        SOCKETS.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            for path in (ROOT, SOCKETS):
                shutil.chown(path, "postgres")
        say(f"initdb {CLUSTER}")
        pg("initdb", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "-D", str(CLUSTER))
    if running():
        say(f"already running (log: {LOG})")
    else:
        options = (
            f"-p {wanted_port} -k {SOCKETS} -c listen_addresses='' "
            "-c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10"
        )
        pg("pg_ctl", "-D", str(CLUSTER), "-o", options, "-l", str(LOG), "-w", "start")
        PORT_FILE.write_text(f"{wanted_port}\n")
        say(f"started on port {wanted_port} (log: {LOG})")
    with psycopg.connect(dsn("postgres"), autocommit=True) as con:
        if con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
            con.execute(f"CREATE DATABASE {DATABASE}")
            say(f"created database {DATABASE}")
    print(dsn())


def counts(con: psycopg.Connection[tuple[int, ...]]) -> dict[str, int]:
    found = {}
    for table in TABLES:
        row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        found[table] = row[0] if row else 0
    return found


def load(reset: bool) -> None:
    with psycopg.connect(dsn()) as con:
        present = [t for t in TABLES if con.execute("SELECT to_regclass(%s)", (t,)).fetchone() != (None,)]
        if present and not reset:
            shown = ", ".join(f"{table} {n:,}" for table, n in counts(con).items())
            say(f"already loaded ({shown}); `load --reset` drops and reloads")
            return
        for table in present:
            con.execute(f"DROP TABLE {table}")
        con.execute(SCHEMA)
        for table, (columns, select) in LOADS.items():
            names = ", ".join(column.split()[0] for column in columns.split(", "))
            con.execute(f"CREATE TEMP TABLE csv (line bigint GENERATED ALWAYS AS IDENTITY, {columns})")
            copy = f"COPY csv ({names}) FROM STDIN (FORMAT csv, HEADER true)"
            with con.cursor() as cursor, cursor.copy(copy) as pipe, (DATA / f"{table}.csv").open("rb") as f:
                while chunk := f.read(1 << 20):
                    pipe.write(chunk)
            target = "tags (user_id, movie_id, tag, tagged_at)" if table == "tags" else table
            con.execute(f"INSERT INTO {target} {select} FROM csv ORDER BY line")
            con.execute("DROP TABLE csv")
        con.commit()
        shown = ", ".join(f"{table} {n:,}" for table, n in counts(con).items())
    with psycopg.connect(dsn(), autocommit=True) as con:
        con.execute("ANALYZE")
    say(f"loaded {shown}")


def stop() -> None:
    if not running():
        say("not running")
        return
    pg("pg_ctl", "-D", str(CLUSTER), "-m", "fast", "-w", "stop")
    say("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start_parser = commands.add_parser("start", help="initdb (once) and start the server; print the DSN")
    start_parser.add_argument("--port", type=int, default=55432, help="port number of the socket (55432)")
    load_parser = commands.add_parser("load", help="create the tables and COPY the CSVs into them")
    load_parser.add_argument("--reset", action="store_true", help="drop the tables first and reload them")
    commands.add_parser("dsn", help="print the connection URI")
    commands.add_parser("stop", help="stop the server")
    args = parser.parse_args()
    try:
        if args.command == "start":
            start(args.port)
        elif args.command == "load":
            load(args.reset)
        elif args.command == "dsn":
            print(dsn())
        else:
            stop()
    except subprocess.CalledProcessError as exc:
        sys.exit(f"{shlex.join(exc.cmd)} failed:\n{exc.stderr or exc.stdout}")
    except psycopg.OperationalError as exc:
        sys.exit(f"cannot reach the server ({str(exc).strip()}): is it running? `python postgres.py start`")


if __name__ == "__main__":
    main()
