"""No secret reaches what observes a run: a project holding secrets (an HTTP source's token header,
a Postgres DSN's password, a Python source that logs its token) runs through the command line
with everything observable on at once (metrics pushed to a gateway on loopback, StatsD to a UDP
listener on loopback, OpenLineage to a file and kept in the lake, ``--log-format json``). Every
byte of every output, and of the run's stored logs, is searched for every form of the secrets;
each output must also hold the run, and the secrets must have reached it redacted (the API
echoes the token, the errors quote it), so that the search can fail."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lagoa.orchestrate.observe.lineage import kept_events
from lagoa.orchestrate.project import Project

TOKEN = "sh0p-t0ken/s3cret+x9"
PASSWORD = "pg-pa/ss+w=rd!"
ENCODED_PASSWORD = urllib.parse.quote(PASSWORD, safe="") + "%zz"
"""libpq cannot decode ``%zz`` and quotes the password back in its error."""


def forms(secret: str) -> set[str]:
    """Every form in which ``secret`` must not appear."""
    return {
        secret,
        urllib.parse.quote(secret),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret, safe="").lower(),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
    }


FORBIDDEN = forms(TOKEN) | forms(PASSWORD) | {ENCODED_PASSWORD}


def assert_clean(where: str, data: str | bytes) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    assert text, f"{where} is empty"
    for form in FORBIDDEN:
        assert form not in text, f"{form!r} appears in {where}"


@dataclass
class Loopback:
    """What the servers on loopback received."""

    refusing: bool = False
    """The API answers 401, quoting the token it was sent."""
    pushes: list[tuple[str, str]] = field(default_factory=list)
    """(path, body) of every push to the gateway: the metrics' text exposition."""


class _Api(BaseHTTPRequestHandler):
    """One page of three records that echo the token; 401 quoting it when refusing or wrong."""

    loopback: Loopback

    def do_GET(self) -> None:
        sent = self.headers.get("X-Shop-Token", "")
        if self.loopback.refusing or sent != TOKEN:
            self._answer(401, {"error": f"token {sent} refused for {self.path}"})
        else:
            self._answer(200, {"results": [{"id": i, "note": f"seen {sent}"} for i in range(3)]})

    def do_PUT(self) -> None:  # the Pushgateway's API
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.loopback.pushes.append((self.path, body))
        self._answer(200, {})

    def _answer(self, status: int, document: object) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def loopback() -> Iterator[tuple[Loopback, int]]:
    received = Loopback()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Api", (_Api,), {"loopback": received}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received, int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def statsd() -> Iterator[socket.socket]:
    """A UDP socket on loopback; what a run sent waits in its buffer, read once the run is over
    (loopback delivers a datagram before ``sendto`` returns)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    yield listener
    listener.close()


def datagrams(listener: socket.socket) -> list[bytes]:
    listener.setblocking(False)
    found = []
    while True:
        try:
            found.append(listener.recv(65536))
        except BlockingIOError:
            return found


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


PROJECT = """
name: shop
sources:
  items:
    kind: http
    base_url: http://127.0.0.1:{api}
    endpoint: /v1/items
    headers: {{X-Shop-Token: "${{env:SHOP_TOKEN}}"}}
    records: results
    primary_key: [id]
    retries: 0
  relay:
    kind: python
    function: relay.py:rows
    options: {{token: "${{env:SHOP_TOKEN}}"}}
  orders_db:
    kind: postgres
    dsn: "${{env:SHOP_DSN}}"
    tables: [orders]
domains:
  shop: {{sources: [items]}}
  relay: {{sources: [relay]}}
  db: {{sources: [orders_db]}}
pipelines:
  daily: {{domains: [shop, relay]}}
  broken: {{domains: [shop, relay, db]}}
observe:
  pushgateway: http://127.0.0.1:{api}
  statsd: {{address: "127.0.0.1:{statsd}"}}
  lineage: {{transport: file, path: lineage/events.jsonl, namespace: shop}}
"""
RELAY = """
import logging
import os

from lagoa.core.config import resolve_secrets


def rows(context, token):
    token = resolve_secrets(token)
    logging.getLogger("lagoa.relay").info("calling upstream with %s", token)
    if os.environ.get("SHOP_REFUSING"):
        raise RuntimeError(f"upstream refused token {token}")
    yield {"id": 1, "sent": token}
"""


@dataclass
class Ran:
    run_id: str
    stdout: str
    stderr: str
    logs: list[dict[str, Any]]
    """The JSON log lines (every line of stderr)."""


def lagoa(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "COLUMNS": "10000",
        "PYTHONWARNINGS": "ignore",
        "SHOP_TOKEN": TOKEN,
        "SHOP_DSN": f"postgresql://lagoa:{ENCODED_PASSWORD}@127.0.0.1:{closed_port()}/shop",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "lagoa.cli", *args, "-p", str(folder)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
    )


def run(folder: Path, pipeline: str, day: str, env: dict[str, str] | None = None) -> Ran:
    done = lagoa(folder, "--log-format", "json", "run", pipeline, "--date", day, "--json", env=env)
    assert done.returncode == (0 if pipeline == "daily" else 1), done.stderr
    logs = [json.loads(line) for line in done.stderr.splitlines()]  # nothing else on stderr
    (run_id,) = {line["run_id"] for line in logs}
    return Ran(run_id, done.stdout, done.stderr, logs)


def test_no_secret_reaches_metrics_statsd_lineage_or_logs(
    tmp_path: Path, loopback: tuple[Loopback, int], statsd: socket.socket
) -> None:
    received, port = loopback
    (tmp_path / "lagoa.yml").write_text(PROJECT.format(api=port, statsd=statsd.getsockname()[1]))
    (tmp_path / "relay.py").write_text(RELAY)

    good = run(tmp_path, "daily", "2024-06-01")
    received.refusing = True
    bad = run(tmp_path, "broken", "2024-06-02", env={"SHOP_REFUSING": "1"})
    sent = datagrams(statsd)
    outputs: dict[str, str | bytes] = {}

    # Metrics: one push per run, holding its runs and rows.
    assert [path for path, _ in received.pushes] == [
        "/metrics/job/lagoa/pipeline/daily",
        "/metrics/job/lagoa/pipeline/broken",
    ]
    samples = {}
    for (_, text), pipeline in zip(received.pushes, ("daily", "broken"), strict=True):
        outputs[f"the metrics pushed after {pipeline}"] = text
        samples[pipeline] = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
    assert samples["daily"][("lagoa_runs_total", (("pipeline", "daily"), ("state", "succeeded")))] == 1.0
    assert samples["daily"][("lagoa_rows_written_total", (("table", "bronze.items"),))] == 3.0
    assert samples["broken"][("lagoa_runs_total", (("pipeline", "broken"), ("state", "failed")))] == 1.0

    # StatsD: Airflow's names for both runs.
    lines = [line for datagram in sent for line in datagram.decode().splitlines()]
    assert any(line.startswith("airflow.dagrun.duration.success.shop.daily:") for line in lines), lines
    assert any(line.startswith("airflow.dagrun.duration.failed.shop.broken:") for line in lines), lines
    assert "airflow.ti.finish.shop.broken.ingest_db.failed:1|c" in lines
    for number, datagram in enumerate(sent):
        outputs[f"StatsD datagram {number}"] = datagram

    # Lineage: the file, and the events kept in the lake, with the failures' error facets.
    written = (tmp_path / "lineage" / "events.jsonl").read_bytes()
    outputs["the lineage file"] = written
    events = [json.loads(line) for line in written.splitlines()]
    kept = kept_events(Project.load(tmp_path).workspace)

    def ids(found: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        return sorted((e["eventType"], e["job"]["name"], e["run"]["runId"]) for e in found)

    assert ids(kept) == ids(events)
    for path in (tmp_path / ".lagoa").rglob("*.json"):
        if "lineage" in path.parts:
            outputs[f"kept event {path.name} of {path.parent.name}"] = path.read_bytes()
    assert {(e["eventType"], e["job"]["name"]) for e in events} >= {
        ("COMPLETE", "daily.ingest_shop"),
        ("COMPLETE", "daily.ingest_relay"),
        ("FAIL", "broken.ingest_shop"),
        ("FAIL", "broken.ingest_relay"),
        ("FAIL", "broken.ingest_db"),
    }
    errors = {  # a failed attempt's; its pipeline's run ends FAIL without one
        e["job"]["name"]: e["run"]["facets"]["errorMessage"]["message"]
        for e in events
        if e["eventType"] == "FAIL" and "errorMessage" in e["run"]["facets"]
    }
    assert set(errors) == {"broken.ingest_shop", "broken.ingest_relay", "broken.ingest_db"}
    assert (
        "answered 401" in errors["broken.ingest_shop"] and "token *** refused" in errors["broken.ingest_shop"]
    )
    assert "upstream refused token ***" in errors["broken.ingest_relay"]
    assert "cannot connect" in errors["broken.ingest_db"] and "***" in errors["broken.ingest_db"]

    # JSON logs: each run's lines, the token the relay logged and the errors' tracebacks redacted.
    for ran in (good, bad):
        outputs[f"the JSON logs of {ran.run_id}"] = ran.stderr
        outputs[f"the output of {ran.run_id}"] = ran.stdout
        told = [line for line in ran.logs if line.get("logger") == "lagoa.relay"]
        assert [line["message"] for line in told] == ["calling upstream with ***"]
        assert told[0]["task"] == "ingest_relay" and told[0]["attempt"] == 1
    failures = {line["task"]: line for line in bad.logs if line["level"] == "ERROR"}
    assert set(failures) == {"ingest_shop", "ingest_relay", "ingest_db"}
    assert "RuntimeError: upstream refused token ***" in failures["ingest_relay"]["error"]
    assert "token *** refused" in failures["ingest_shop"]["message"]
    assert failures["ingest_db"]["error"].startswith("Traceback (most recent call last):")

    # The run's stored logs, as `lagoa run show --logs` prints them and as the history holds them.
    state = Project.load(tmp_path).state
    for ran in (good, bad):
        shown = lagoa(tmp_path, "run", "show", ran.run_id, "--logs")
        assert shown.returncode == 0, shown.stderr
        assert "calling upstream with ***" in shown.stdout
        outputs[f"run show {ran.run_id} --logs"] = shown.stdout + shown.stderr
        found = state.run(ran.run_id)
        assert found is not None
        outputs[f"the history of {ran.run_id}"] = json.dumps(found.as_dict(), default=str)
    assert "upstream refused token ***" in str(outputs[f"run show {bad.run_id} --logs"])

    for where, data in outputs.items():
        assert_clean(where, data)
    for path in tmp_path.rglob("*"):  # the state database, raw pages, catalog, metadata
        if path.is_file() and path.suffix != ".parquet" and path.name not in ("lagoa.yml", "relay.py"):
            data = path.read_bytes()
            if data:
                assert_clean(str(path.relative_to(tmp_path)), data)
