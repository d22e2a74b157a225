"""The cost of observability: the retail example's main job (`lagoa run daily` over June) with
everything observable on — StatsD to a UDP listener, OpenLineage to a file, JSON logs, metrics
pushed to a Pushgateway at the end — against the same run with all of it off, alternating, in one
run. Prometheus counters are kept in either case (they are in-process and always on); the "on"
side also pays their push.

Each side is the command a user runs, in a fresh process (`lagoa run daily --start … --end …`),
on a fresh copy of the example. The Pushgateway is a loopback HTTP server in this process that
accepts what is pushed, and the StatsD listener a UDP socket; both count what they receive, so
the "on" side is seen to emit.

    python benchmarks/observe.py [--days 30] [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, alternate, print_table

EXAMPLE = Path(__file__).parents[1] / "examples" / "retail_lakehouse"
LAGOA = [sys.executable, "-m", "lagoa.cli"]
FIRST_DAY = date(2024, 6, 1)


class Pushgateway(BaseHTTPRequestHandler):
    """Accepts pushes (PUT/POST of a metrics body) as a Pushgateway does, and counts them."""

    pushes = 0

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).pushes += 1
        self.send_response(200)
        self.end_headers()

    do_POST = do_PUT  # noqa: N815 (the name http.server calls)

    def log_message(self, *args: object) -> None:
        pass


class Sides:
    def __init__(self, days: int) -> None:
        self.days = days
        self.gateway = ThreadingHTTPServer(("127.0.0.1", 0), Pushgateway)
        threading.Thread(target=self.gateway.serve_forever, daemon=True).start()
        self.statsd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.statsd.bind(("127.0.0.1", 0))
        self.statsd.settimeout(0.2)
        self.datagrams = 0
        self.lineage_events = 0
        self.json_lines = 0
        self._stop = threading.Event()
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                self.statsd.recv(65536)
                self.datagrams += 1
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self.gateway.shutdown()
        self.statsd.close()

    def once(self, mode: str) -> tuple[float, float]:
        project = DATA / f"project-observe-{mode}"
        shutil.rmtree(project, ignore_errors=True)
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".lagoa", "target", "logs"))
        if mode == "on":
            statsd_port = self.statsd.getsockname()[1]
            with (project / "lagoa.yml").open("a", encoding="utf-8") as config:
                config.write(
                    "\nobserve:\n"
                    f"  pushgateway: http://127.0.0.1:{self.gateway.server_port}\n"
                    f"  statsd: {{address: '127.0.0.1:{statsd_port}'}}\n"
                    "  lineage: {transport: file, path: .lagoa/lineage.jsonl}\n"
                    "  log_format: json\n"
                )
        end = FIRST_DAY + timedelta(days=self.days)
        command = [*LAGOA, "run", "daily", "--start", str(FIRST_DAY), "--end", str(end), "-p", str(project)]
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ | {"NO_COLOR": "1"}
        )
        assert process.stderr is not None
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"`lagoa run daily` failed ({mode}):\n{stderr.decode()[-3000:]}")
        if mode == "on":
            lineage = project / ".lagoa" / "lineage.jsonl"
            self.lineage_events += len(lineage.read_text().splitlines()) if lineage.exists() else 0
            self.json_lines += sum(line.startswith(b"{") for line in stderr.splitlines())
        shutil.rmtree(project, ignore_errors=True)
        return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=30, help="daily intervals from 2024-06-01 (one run)")
    parser.add_argument("--pairs", type=int, default=3, help="alternating on/off pairs after warm-up")
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    sides = Sides(args.days)
    started = time.perf_counter()
    try:
        result = alternate(
            "retail run, observability all on / all off (target ≤ 1.03)",
            ("on",),
            ("off",),
            args.pairs,
            sides.once,
        )
    finally:
        sides.close()
    runs = args.pairs + 1
    print(
        f"\n`lagoa run daily` over {args.days} day(s), {args.pairs} pairs, {time.perf_counter() - started:.0f} s in all"
    )
    print_table([result])
    print(
        f"the 'on' side emitted, per run: {sides.datagrams / runs:.0f} StatsD datagrams, "
        f"{sides.lineage_events / runs:.0f} lineage events, {sides.json_lines / runs:.0f} JSON log lines, "
        f"{Pushgateway.pushes / runs:.0f} push(es)"
    )
    if not (sides.datagrams and sides.lineage_events and Pushgateway.pushes):
        raise SystemExit("the 'on' side emitted nothing on some channel: the comparison would mean nothing")


if __name__ == "__main__":
    main()
