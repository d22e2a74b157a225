"""`lagoa serve` on a large project: server time per page and per API call, and the lineage page's
render time in a browser.

The project is generated once and kept in benchmarks/.data/serve/ (keyed by its sizes): a lagoa.yml
of tiny CSV sources, each landed by Lagoa's own ingest into bronze and silver (real Iceberg
commits; some with a suite whose failing rows go to a quarantine table), a dbt project of staging
models over silver and marts joining two or three of them (parsed by dbt, not built, so the
manifest and the lineage graph are real), a third of the marts published to gold (tables created
with one small append), a run history written straight into the state database (20 pipelines,
daily intervals over three years, mostly succeeded, some failed; transform attempts' logs carry
dbt's per-model lines) and quality results of a few hundred runs. With ``--tables 500``: 200
sources, 500 lake tables (plus quarantines), 400 models and 1,100 lineage nodes.

The server is ``lagoa serve --port 0`` in its own process; the client sends, per URL, one warm-up
request and then ``--repeat`` sequential requests on a kept-alive connection, and the time of each
is what the client sees on a fresh connection (target p95 ≤ 200 ms for every page); a few more on
one kept-alive connection, as a browser sends them, give the "kept-alive" column. The browser part opens the whole
lineage graph in headless Chromium (Playwright) five times: target ≤ 2 s until every node is drawn.

    python benchmarks/serve.py [--runs 10000] [--tables 500] [--repeat 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, print_table

LAGOA = [sys.executable, "-m", "lagoa.cli"]
PIPELINES = 20
TWO_DOMAIN_PIPELINES = 5
"""Pipelines 15…19 run two domains (8 tasks), the others one (4 tasks): 5 attempts a run on average."""
YEARS = 3
QUALITY_RUNS = 300
KEPT_ALIVE = 5
SLOW_SECONDS = 5.0
"""A URL whose warm-up takes longer is timed twice only (it would take minutes, and miss anyway)."""
"""Requests per URL also timed on one kept-alive connection, as a browser sends them."""
PAGE_TARGET_MS = 200.0
RENDER_TARGET_S = 2.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclasses.dataclass(frozen=True)
class Sizes:
    tables: int
    runs: int

    @property
    def sources(self) -> int:
        """Each source has a bronze and a silver table, and every other one a published mart."""
        return max(4, self.tables * 2 // 5)

    @property
    def domains(self) -> int:
        return PIPELINES - TWO_DOMAIN_PIPELINES + 2 * TWO_DOMAIN_PIPELINES

    @property
    def folder(self) -> Path:
        return DATA / "serve" / f"tables-{self.tables}-runs-{self.runs}"


def source_name(i: int) -> str:
    return f"src_{i:03d}"


def domain_of(i: int, sizes: Sizes) -> str:
    return f"d{i % sizes.domains:02d}"


def pipeline_domains(p: int) -> list[str]:
    single = PIPELINES - TWO_DOMAIN_PIPELINES
    if p < single:
        return [f"d{p:02d}"]
    first = single + 2 * (p - single)
    return [f"d{first:02d}", f"d{first + 1:02d}"]


def marts_of(i: int, sizes: Sizes) -> list[int]:
    """The staging models mart ``i`` joins: its own and one or two others of the same domain."""
    same = [j for j in range(sizes.sources) if j % sizes.domains == i % sizes.domains and j != i]
    rng = random.Random(i)
    return [i, *rng.sample(same, min(len(same), 1 + i % 2))]


# --- the project ------------------------------------------------------------------------------


def write_project(root: Path, sizes: Sizes) -> None:
    """lagoa.yml, tiny CSVs, suites and the dbt project."""
    rng = random.Random(7)
    samples, quality, models = root / "samples", root / "quality", root / "dbt" / "models"
    for folder in (samples, quality, models / "staging", models / "marts"):
        folder.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {"name": "serve_bench", "sources": {}, "domains": {}, "pipelines": {}}
    for i in range(sizes.sources):
        name = source_name(i)
        lines = ["id,name,amount,updated_at"]
        for row in range(20):
            amount = -1.0 if i % 5 == 0 and row < 3 else round(rng.uniform(1, 500), 2)
            lines.append(f"{row},item {row},{amount},2024-06-01 00:00:{row:02d}")
        (samples / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        config["sources"][name] = {
            "format": "csv",
            "path": f"samples/{name}.csv",
            "primary_key": ["id"],
            "ordering": "updated_at",
            "columns": {"id": "long", "name": "string", "amount": "double", "updated_at": "timestamp"},
        }
        if i % 5 == 0:  # a suite whose failing rows are quarantined
            suite = {
                "name": name,
                "expectations": [
                    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
                    {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
                    {
                        "type": "expect_column_values_to_be_between",
                        "kwargs": {"column": "amount", "min_value": 0, "max_value": 1000},
                        "meta": {"lagoa": {"on_fail": "drop"}},
                    },
                ],
            }
            (quality / f"{name}.json").write_text(json.dumps(suite, indent=1), encoding="utf-8")
        stg = f"{{{{ config(tags=['{domain_of(i, sizes)}']) }}}}\nselect id, name, amount, updated_at\n"
        stg += f"from {{{{ source('silver', '{name}') }}}}\n"
        (models / "staging" / f"stg_{name}.sql").write_text(stg, encoding="utf-8")
        joined = marts_of(i, sizes)
        body = [f"{{{{ config(tags=['{domain_of(i, sizes)}']) }}}}", "select s0.id, s0.name"]
        body.append(", " + " + ".join(f"s{k}.amount" for k in range(len(joined))) + " as amount")
        body.append(f"from {{{{ ref('stg_{source_name(joined[0])}') }}}} s0")
        for k, j in enumerate(joined[1:], start=1):
            body.append(f"join {{{{ ref('stg_{source_name(j)}') }}}} s{k} using (id)")
        (models / "marts" / f"mart_{name}.sql").write_text("\n".join(body) + "\n", encoding="utf-8")
    for d in range(sizes.domains):
        members = [source_name(i) for i in range(sizes.sources) if i % sizes.domains == d]
        config["domains"][f"d{d:02d}"] = {"sources": members}
    for p in range(PIPELINES):
        config["pipelines"][f"pipeline_{p:02d}"] = {"domains": pipeline_domains(p), "schedule": "0 2 * * *"}
    config["publish"] = {f"mart_{source_name(i)}": {} for i in range(0, sizes.sources, 2)}
    (root / "lagoa.yml").write_text(json.dumps(config, indent=1), encoding="utf-8")  # JSON is YAML
    (root / "dbt" / "dbt_project.yml").write_text(
        "name: serve_bench\nversion: '1.0.0'\nconfig-version: 2\nprofile: serve_bench\n"
        "model-paths: ['models']\nmodels:\n  serve_bench:\n    staging: {+materialized: view}\n"
        "    marts: {+materialized: table}\n",
        encoding="utf-8",
    )


LAKE_CODE = """
import sys, time
from pathlib import Path
import pyarrow as pa
from pyiceberg.schema import Schema
from pyiceberg.types import DoubleType, LongType, NestedField, StringType
from lagoa import Project

root = Path(sys.argv[1])
project = Project.load(root)
started = time.perf_counter()
project.ingest()
ingested = time.perf_counter()
project.dbt_sources()
project.dbt(["parse"])
parsed = time.perf_counter()
schema = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "name", StringType(), required=False),
    NestedField(3, "amount", DoubleType(), required=False),
)
rows = pa.table({"id": list(range(10)), "name": [f"n{i}" for i in range(10)], "amount": [1.5] * 10})
for model in sorted(project.config.publish):
    table = project.lake.create_table(f"gold.{model}", schema)
    table.append(rows.cast(table.schema().as_arrow()))
project.close()
print(f"{ingested - started:.1f} {parsed - ingested:.1f} {time.perf_counter() - parsed:.1f}")
"""


def build_lake(root: Path) -> str:
    """Ingest every source, parse the dbt project, create the gold tables (in a child process:
    one Lagoa user, as the CLI would be)."""
    done = subprocess.run(
        [sys.executable, "-c", LAKE_CODE, str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    if done.returncode != 0:
        raise SystemExit(f"building the lake failed:\n{done.stderr[-3000:]}")
    ingest, parse, gold = done.stdout.split()[-3:]
    return f"ingest {ingest} s, dbt parse {parse} s, gold {gold} s"


def dbt_log(models: list[str], start: datetime) -> str:
    lines, at = [], start
    for model in models:
        seconds = 0.05 + (hash(model) % 40) / 100
        stamp = at.strftime("%Y-%m-%d %H:%M:%S") + f",{at.microsecond // 1000:03d}"
        lines.append(
            f"{stamp} INFO lagoa.tasks: dbt model {model}: success in {seconds:.2f}s, started {at.isoformat()}"
        )
        at += timedelta(seconds=seconds)
    return "\n".join(lines)


def write_history(root: Path, sizes: Sizes) -> str:
    """``sizes.runs`` runs and their attempts, inserted in one transaction."""
    from lagoa import Project
    from lagoa.state.store import ATTEMPTS, RUNS

    rng = random.Random(11)
    project = Project.load(root)
    store = project.state
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=365 * YEARS)
    per_pipeline = math.ceil(sizes.runs / PIPELINES)
    step = (today - first) / per_pipeline
    models_of: dict[str, list[str]] = {}
    for i in range(sizes.sources):
        models_of.setdefault(domain_of(i, sizes), []).extend(
            [f"stg_{source_name(i)}", f"mart_{source_name(i)}"]
        )
    runs: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    for n in range(sizes.runs):
        p, k = n % PIPELINES, n // PIPELINES
        day = (first + step * k).replace(hour=0)
        started = day + timedelta(days=1, hours=2, seconds=rng.randint(0, 60))
        failed = rng.random() < 0.06
        run_id = f"run-{started:%Y%m%dT%H%M%SZ}-{n:06x}"
        at = started
        failing = None
        tasks = [
            f"{kind}_{d}"
            for d in pipeline_domains(p)
            for kind in ("ingest", "validate", "transform", "publish")
        ]
        if failed:
            failing = rng.choice(tasks)
        skipped = False
        for task in tasks:
            domain = task.split("_", 1)[1]
            if skipped:
                attempts.append(_attempt(run_id, task, 0, "skipped", at, at, None, None, None))
                continue
            seconds = rng.uniform(0.5, 20) if not task.startswith("transform") else rng.uniform(5, 60)
            end = at + timedelta(seconds=seconds)
            log = dbt_log(models_of.get(domain, []), at) if task.startswith("transform") else None
            if task.startswith("ingest"):
                log = f"{at:%Y-%m-%d %H:%M:%S},000 INFO lagoa.tasks: landed {domain}"
            state, error = "succeeded", None
            if task == failing:
                state, error = "failed", f"TransformError: dbt build failed in {domain}"
                skipped = True
            rows = rng.randint(100, 50_000)
            attempts.append(_attempt(run_id, task, 1, state, at, end, error, rows, log))
            at = end
        runs.append(
            {
                "run_id": run_id,
                "pipeline": f"pipeline_{p:02d}",
                "interval_start": day,
                "interval_end": day + timedelta(days=1),
                "state": "failed" if failed else "succeeded",
                "started_at": started,
                "ended_at": at,
                "error": f"task {failing} failed" if failed else None,
                "details": json.dumps({"domains": pipeline_domains(p), "trigger": "scheduled"}),
            }
        )
    with store.engine.begin() as con:
        con.execute(RUNS.insert(), runs)
        con.execute(ATTEMPTS.insert(), attempts)
    project.close()
    return f"{len(runs):,} runs, {len(attempts):,} attempts"


def _attempt(
    run_id: str,
    task: str,
    attempt: int,
    state: str,
    start: datetime,
    end: datetime,
    error: str | None,
    rows: int | None,
    log: str | None,
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "task": task,
        "attempt": attempt,
        "state": state,
        "started_at": start,
        "ended_at": end,
        "error": error,
        "rows_in": rows,
        "rows_out": rows,
        "log": log,
    }


def write_quality(root: Path) -> str:
    """The ingest's validation results stored again for the latest validating runs."""
    from lagoa import Project
    from lagoa.quality.results import load_results, save_result
    from lagoa.state.store import ATTEMPTS

    project = Project.load(root)
    _, results = load_results(project.storage)
    with project.state.engine.connect() as con:
        query = (
            ATTEMPTS.select()
            .with_only_columns(ATTEMPTS.c.run_id, ATTEMPTS.c.started_at)
            .where(ATTEMPTS.c.task.like("validate\\_%", escape="\\"))
            .order_by(ATTEMPTS.c.started_at.desc())
            .limit(QUALITY_RUNS)
        )
        chosen = list(con.execute(query))
    saved = 0
    for run_id, started in reversed(chosen):
        assert isinstance(started, datetime)
        when = started if started.tzinfo else started.replace(tzinfo=UTC)  # SQLite keeps no zone
        for result in results:
            save_result(project.storage, dataclasses.replace(result, run_id=str(run_id), validated_at=when))
            saved += 1
    project.close()
    return f"{saved:,} stored results"


def generated(sizes: Sizes) -> Path:
    """The project of these sizes, generated unless kept from an earlier run."""
    root = sizes.folder
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating the project ({sizes.tables} tables, {sizes.runs:,} runs) …", file=sys.stderr)
    # Built in place (the catalog keeps absolute paths); `.complete` marks a finished build.
    steps = []
    started = time.perf_counter()
    write_project(root, sizes)
    steps.append(build_lake(root))
    steps.append(write_history(root, sizes))
    steps.append(write_quality(root))
    built = f"built in {time.perf_counter() - started:.0f} s: " + "; ".join(steps)
    (root / ".complete").write_text(built + "\n", encoding="utf-8")
    return root


# --- measuring --------------------------------------------------------------------------------


class Server:
    """``lagoa serve --port 0`` on the project."""

    def __init__(self, root: Path) -> None:
        self.process = subprocess.Popen(
            [*LAGOA, "serve", "--port", "0", "-p", str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if found is None:
            self.process.kill()
            raise SystemExit(f"`lagoa serve` did not start: {line}{self.process.communicate()[1][-3000:]}")
        self.port = int(found[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.csrf = ""

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)

    def request(
        self,
        method: str,
        url: str,
        body: dict[str, Any] | None = None,
        connection: http.client.HTTPConnection | None = None,
    ) -> tuple[int, bytes]:
        """One request, on ``connection`` (kept alive) or on a connection of its own."""
        headers = {"Host": f"127.0.0.1:{self.port}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers |= {"Content-Type": "application/json", "X-CSRF-Token": self.csrf}
        own = connection is None
        used = connection or self.connect()
        try:
            used.request(method, url, body=data, headers=headers)
            response = used.getresponse()
            return response.status, response.read()
        finally:
            if own:
                used.close()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def time_url(
    server: Server, method: str, url: str, repeat: int, body: dict[str, Any] | None = None
) -> tuple[list[float], list[float]]:
    """Milliseconds per request on a fresh connection each (the server's time: connecting on
    loopback costs a fraction of a millisecond), and on one kept-alive connection (as a browser)."""
    started = time.perf_counter()
    status, payload = server.request(method, url, body)  # warm-up
    if status != 200:
        raise SystemExit(f"{method} {url}: {status} {payload[:500]!r}")
    if time.perf_counter() - started > SLOW_SECONDS:  # far over any target: a few requests say so
        repeat = min(repeat, 2)
    fresh = []
    for _ in range(repeat):
        started = time.perf_counter()
        status, _ = server.request(method, url, body)
        fresh.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"{method} {url}: {status}")
    kept: list[float] = []
    connection = server.connect()
    try:
        for i in range(min(KEPT_ALIVE, repeat) + 1):  # the first opens the connection
            started = time.perf_counter()
            server.request(method, url, body, connection)
            if i:
                kept.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()
    return fresh, kept


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def choices(server: Server) -> dict[str, str]:
    """A run, a transform attempt, a silver table with a quarantine, a mart, from the API."""
    _, body = server.request("GET", "/api/runs?pipeline=pipeline_16&state=failed&limit=1")
    failed = json.loads(body)["runs"][0]["run_id"]
    _, body = server.request("GET", "/api/runs?pipeline=pipeline_16&state=succeeded&limit=1")
    run = json.loads(body)["runs"][0]["run_id"]
    _, body = server.request("GET", f"/api/runs/{run}")
    attempt = next(a for a in json.loads(body)["attempts"] if a["task"].startswith("transform_"))
    _, body = server.request("GET", "/api/tables")
    names = [t["identifier"] for t in json.loads(body)["tables"]]
    silver = next(n for n in names if n.startswith("silver.") and f"{n}__quarantine" in names)
    mart = next(n for n in names if n.startswith("gold."))
    _, page = server.request("GET", "/query")
    csrf = re.search(rb'<meta name="csrf-token" content="([^"]+)"', page)
    server.csrf = csrf[1].decode() if csrf else ""
    return {
        "run": run,
        "failed": failed,
        "task": attempt["task"],
        "attempt": str(attempt["attempt"]),
        "silver": silver,
        "mart": f"model:{mart.removeprefix('gold.')}",
    }


def urls(c: dict[str, str]) -> list[tuple[str, str, bool]]:
    """(method, URL, is a page)."""
    t, log = c["silver"], f"/api/runs/{c['run']}/attempts/{c['task']}/{c['attempt']}/log"
    pages = [
        "/",
        "/runs",
        "/runs?pipeline=pipeline_16&state=failed",
        f"/runs/{c['run']}",
        "/tables",
        f"/tables/{t}",
        "/quality",
        f"/quality/tables/{t}",
        "/lineage",
        f"/lineage?focus={quote(c['mart'])}&up=2&down=2",
        "/query",
        "/docs",
    ]
    api = [
        "/api/overview",
        "/api/runs",
        f"/api/runs/{c['run']}",
        log,
        "/api/tables",
        f"/api/tables/{t}",
        f"/api/tables/{t}/files",
        f"/api/tables/{t}/preview",
        f"/api/tables/{t}/quarantine",
        "/api/quality",
        f"/api/quality/tables/{t}",
        "/api/lineage",
        f"/api/lineage/columns/{t}",
    ]
    return (
        [("GET", u, True) for u in pages] + [("GET", u, False) for u in api] + [("POST", "/api/query", False)]
    )


def measure(server: Server, repeat: int) -> tuple[list[dict[str, object]], dict[str, str]]:
    chosen = choices(server)
    results: list[dict[str, object]] = []
    for method, url, page in urls(chosen):
        body = {"sql": f"select count(*) from {chosen['silver']}"} if method == "POST" else None
        times, kept = time_url(server, method, url, repeat, body)
        p95 = percentile(times, 95)
        target = f"≤ {PAGE_TARGET_MS:.0f}" if page else "-"
        results.append(
            {
                "URL": f"{method} {url}" if method != "GET" else url,
                "p50 ms": f"{statistics.median(times):.1f}",
                "p95 ms": f"{p95:.1f}",
                "n": len(times),
                "kept-alive p50": f"{statistics.median(kept):.1f}",
                "target": target,
                "verdict": ("ok" if p95 <= PAGE_TARGET_MS else "OVER") if page else "",
            }
        )
    return results, chosen


def render(server: Server, times: int) -> tuple[list[float], list[float], int]:
    """Load times of the whole lineage page (navigation's loadEventEnd; wall clock until every
    node is drawn), and the node count."""
    from playwright.sync_api import sync_playwright

    _, body = server.request("GET", "/api/lineage")
    expected = len(json.loads(body)["nodes"])
    load, wall = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for i in range(times + 1):  # the first warms the browser's cache of scripts and styles
                page = browser.new_page()
                started = time.perf_counter()
                page.goto(f"{server.base}/lineage", wait_until="load")
                page.wait_for_function(
                    "n => document.querySelectorAll('svg.lineage .node').length === n", arg=expected
                )
                seconds = time.perf_counter() - started
                event = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
                page.close()
                if i:
                    wall.append(seconds)
                    load.append(float(event) / 1000)
        finally:
            browser.close()
    return load, wall, expected


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the history (5 attempts each)")
    parser.add_argument("--tables", type=int, default=500, help="lake tables (bronze, silver, gold)")
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per URL after one warm-up")
    parser.add_argument("--renders", type=int, default=5, help="timed loads of the lineage page")
    args = parser.parse_args()
    if not Path(CHROMIUM).is_file():
        raise SystemExit(
            f"{CHROMIUM} not found: `make system-packages` (or apt-get install chromium) installs it"
        )
    sizes = Sizes(args.tables, args.runs)
    root = generated(sizes)
    print((root / ".complete").read_text(encoding="utf-8").strip())
    server = Server(root)
    try:
        results, chosen = measure(server, args.repeat)
        load, wall, nodes = render(server, args.renders)
    finally:
        server.close()
    print(
        f"\n`lagoa serve` over {sizes.sources} sources, {sizes.runs:,} runs; {args.repeat} requests per URL "
        f"(run {chosen['run']}, table {chosen['silver']}, focus {chosen['mart']})"
    )
    print_table(results)
    over = [r["URL"] for r in results if r["verdict"] == "OVER"]
    print(
        f"\nlineage page, {nodes} nodes, median of {args.renders}: loadEventEnd "
        f"{statistics.median(load):.2f} s, until every node drawn {statistics.median(wall):.2f} s "
        f"(max {max(wall):.2f} s; target ≤ {RENDER_TARGET_S:.0f} s) "
        f"{'ok' if statistics.median(wall) <= RENDER_TARGET_S else 'OVER'}"
    )
    if over:
        print(f"pages over target: {', '.join(map(str, over))}")


if __name__ == "__main__":
    main()
