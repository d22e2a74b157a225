"""S3 ingest: CSV → bronze Iceberg with the lake on S3 (moto's server, a process on loopback)
against the same ingest with the lake on local disk, alternating, in one run.

Both sides use a SQLite catalog, so the ratio is what S3's round trips cost (raw landing by
multipart upload, Parquet written through DuckDB's httpfs, Iceberg metadata and manifests through
pyiceberg's file IO); a third side commits to Glue instead. Each S3 run also counts the HTTP
requests the server received, for the one commit an ingest makes. moto keeps objects in memory
on the same two cores, so the figure is an upper bound on the local overhead of talking S3, not
a measure of AWS's latency.

    python benchmarks/s3_ingest.py [--rows 1000000] [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, alternate, generate, print_table, side
from run import CONFIG, LAGOA_SIDE

REGION = "eu-west-1"
REQUEST = re.compile(rb'"(GET|PUT|POST|HEAD|DELETE) ')


@contextmanager
def moto() -> Iterator[tuple[str, Path]]:
    """moto's server on a free port, this process's AWS settings pointed at it; its URL and log."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = Path(tempfile.mkdtemp()) / "moto.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"moto_server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        import boto3

        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket="bench", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield url, log
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(log.parent, ignore_errors=True)


class Sides:
    def __init__(self, csv: Path, log: Path) -> None:
        self.csv = csv
        self.log = log
        self.runs = 0
        self.requests: dict[str, list[int]] = {"s3": [], "glue": []}

    def once(self, where: str) -> tuple[float, float]:
        project = DATA / f"project-s3-{where}"
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir(parents=True)
        self.runs += 1
        config = CONFIG.format(path=self.csv)
        if where != "local":
            config += f"storage: {{root: 's3://bench/run{self.runs}'}}\n"
        if where == "glue":
            config += f"catalog: {{uri: 'glue://run{self.runs}'}}\n"
        (project / "lagoa.yml").write_text(config)
        before = self._requests()
        try:
            return side(LAGOA_SIDE, str(project), "bronze")
        finally:
            if where != "local":
                self.requests[where].append(self._requests() - before)
            shutil.rmtree(project, ignore_errors=True)

    def _requests(self) -> int:
        return len(REQUEST.findall(self.log.read_bytes()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="ERP orders to generate (seeded)")
    parser.add_argument("--pairs", type=int, default=3, help="alternating S3/local pairs after warm-up")
    args = parser.parse_args()
    csv = generate(args.rows)
    started = time.perf_counter()
    with moto() as (_, log):
        sides = Sides(csv, log)
        results = [
            alternate(
                "CSV → bronze, lake on S3 (moto) / on local disk (target: report)",
                ("s3",),
                ("local",),
                args.pairs,
                sides.once,
            ),
            alternate(
                "CSV → bronze, lake on S3 + Glue catalog (moto) / on local disk (target: report)",
                ("glue",),
                ("local",),
                args.pairs,
                sides.once,
            ),
        ]
    print(
        f"\n{args.rows:,} orders ({csv.stat().st_size / 1e6:.0f} MB CSV), {args.pairs} pairs, "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    print_table(results)
    for where, counts in sides.requests.items():
        print(f"HTTP requests for one ingest (one commit), {where}: {min(counts)}–{max(counts)}")


if __name__ == "__main__":
    main()
