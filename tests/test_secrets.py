"""Secrets never appear in output, in any encoding: raw, percent-encoded (``quote`` and
``quote_plus``), JSON-escaped (``\\/``) or as the base64 of Basic ``user:password``; at any sink:
stderr, ``lagoa runs``, ``lagoa run show --logs``, the state database, raw pages, bronze and silver,
``lagoa doctor``. An API on loopback echoes the credentials back in every way it can."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lagoa.orchestrate.project import Project
from tests.aws import REGION, moto_server, point_at

KEY = "k3y/with+plus=eq"
"""An API key sent as a query parameter: ``/``, ``+`` and ``=`` all change when encoded."""
USER = "lagoa"
PASSWORD = "pa/ss+w=rd!"
"""A Basic password; the base64 of ``lagoa:pa/ss+w=rd!`` holds a ``/`` too."""
PAGES = 3


def encodings(secret: str) -> set[str]:
    """Every form in which ``secret`` must not appear."""
    forms = {
        secret,
        urllib.parse.quote(secret),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        urllib.parse.quote(secret, safe="").lower(),
        json.dumps(secret)[1:-1].replace("/", "\\/"),
    }
    return forms


BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
FORBIDDEN = encodings(KEY) | encodings(PASSWORD) | {BASIC, BASIC.replace("/", "\\/")}


def assert_clean(where: str, text: str | bytes) -> None:
    for form in FORBIDDEN:
        if isinstance(text, bytes):
            assert form.encode() not in text, f"{form!r} appears in {where}"
        else:
            assert form not in text, f"{form!r} appears in {where}"


class EchoApi(BaseHTTPRequestHandler):
    """Pages of records that echo the credentials: the key as a body field, the Authorization
    header as a field, everything JSON-escaped (``\\/``) on page 1, and the key in the next link
    (``quote_plus`` on page 1, ``quote`` on page 2). ``/v1/fail`` answers 400 quoting the request."""

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        auth = self.headers.get("Authorization", "")
        if url.path == "/v1/fail" or query.get("api_key") != KEY:
            self._answer(400, json.dumps({"error": f"bad request {self.path}", "auth": auth}))
            return
        page = int(query.get("page", "1"))
        base = f"http://{self.headers['Host']}/v1/items"
        following = {
            1: f"{base}?api_key={urllib.parse.quote_plus(KEY)}&page=2",
            2: f"{base}?api_key={urllib.parse.quote(KEY)}&page=3",
        }.get(page)
        records = [
            {"id": page * 10 + i, "echo_key": KEY, "echo_auth": auth, "echo_url": self.path} for i in range(3)
        ]
        body = json.dumps({"results": records, "next": following})
        self._answer(200, body.replace("/", "\\/") if page == 1 else body)

    def _answer(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def lagoa(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "10000", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "lagoa.cli", *args, "-p", str(folder)], capture_output=True, text=True, env=env
    )


SOURCE = """
  {name}:
    kind: http
    base_url: {base}
    endpoint: {endpoint}
    params: {{api_key: "{key}"}}
    auth: {{type: basic, username: {user}, password: "{password}"}}
    records: results
    paginate: {{type: next_url, path: next}}
    primary_key: [id]
    retries: 0
"""


@pytest.fixture(scope="module")
def aws_server() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(params=["env", "aws-secret"])
def secret_references(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The API key and password as the project file refers to them: environment variables, or
    secrets in (moto's) Secrets Manager, the key inside a JSON secret."""
    if request.param == "env":
        monkeypatch.setenv("ECHO_KEY", KEY)
        monkeypatch.setenv("ECHO_PASSWORD", PASSWORD)
        return "${env:ECHO_KEY}", "${env:ECHO_PASSWORD}"
    import boto3

    point_at(request.getfixturevalue("aws_server"), monkeypatch)
    prefix = f"echo/{request.node.name}/{os.getpid()}"  # each secret name once per process
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name=f"{prefix}/api", SecretString=json.dumps({"key": KEY, "other": "x"}))
    client.create_secret(Name=f"{prefix}/password", SecretString=PASSWORD)
    return f"${{aws-secret:{prefix}/api#key}}", f"${{aws-secret:{prefix}/password}}"


def test_no_encoding_of_an_echoed_secret_reaches_any_sink(
    echo_api: str, tmp_path: Path, secret_references: tuple[str, str]
) -> None:
    key, password = secret_references
    config = "name: secrets\nsources:"
    for name, endpoint in (("items", "/v1/items"), ("broken", "/v1/fail")):
        config += SOURCE.format(
            name=name, base=echo_api, endpoint=endpoint, user=USER, key=key, password=password
        )
    (tmp_path / "lagoa.yml").write_text(config)

    landed = lagoa(tmp_path, "ingest", "items")
    assert landed.returncode == 0, landed.stderr
    failed = lagoa(tmp_path, "ingest", "broken")
    assert failed.returncode == 1 and "answered 400" in failed.stderr
    outputs = {"ingest": landed.stdout + landed.stderr, "failed ingest": failed.stdout + failed.stderr}
    for flag in ((), ("--json",)):
        outputs[f"lagoa runs {flag}"] = lagoa(tmp_path, "runs", *flag).stdout
    runs = Project.load(tmp_path).state.runs()
    assert {r.state for r in runs} == {"succeeded", "failed"}
    for run in runs:
        shown = lagoa(tmp_path, "run", "show", run.run_id, "--logs")
        assert shown.returncode == 0, shown.stderr
        outputs[f"run show {run.run_id}"] = shown.stdout + shown.stderr
    for where, text in outputs.items():
        assert_clean(where, text)
    assert "api_key=***" in failed.stderr and "Basic ***" in failed.stderr  # said, but redacted

    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".parquet"]
    assert any(p.name == "state.db" for p in files)
    raw = [p for p in files if "raw" in p.relative_to(tmp_path).parts]
    assert raw, "no page was landed raw"
    for path in files:  # the state database, raw pages, catalog and table metadata
        assert_clean(str(path.relative_to(tmp_path)), path.read_bytes())
    for line in raw[0].read_bytes().splitlines():
        json.loads(line)  # still JSON

    project = Project.load(tmp_path)
    for table in ("bronze.items", "silver.items"):
        columns, rows = project.query(f"select * from {table}")
        assert len(rows) == PAGES * 3
        assert_clean(table, json.dumps([[str(v) for v in row] for row in rows]))
        echoed = {row[columns.index("echo_key")] for row in rows}
        assert echoed == {"***"}  # the records landed; only the secret was replaced


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("tail", ["", "%zz"], ids=["refused", "rejected-by-libpq"])
def test_doctor_and_ingest_redact_a_postgres_dsn_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tail: str
) -> None:
    """libpq quotes a password it cannot decode back in its error; a refused connection does not:
    either way neither command shows any form of it."""
    password = urllib.parse.quote(PASSWORD, safe="") + tail
    monkeypatch.setenv("ECHO_DSN", f"postgresql://{USER}:{password}@127.0.0.1:{closed_port()}/shop")
    (tmp_path / "lagoa.yml").write_text(
        'name: pg\nsources:\n  shop:\n    kind: postgres\n    dsn: "${env:ECHO_DSN}"\n    tables: [orders]\n'
    )
    doctor = lagoa(tmp_path, "doctor")
    assert "cannot connect" in doctor.stdout, doctor.stdout + doctor.stderr
    ingest = lagoa(tmp_path, "ingest")
    assert ingest.returncode == 1 and "cannot connect" in ingest.stderr, ingest.stderr
    for where, text in (("doctor", doctor.stdout + doctor.stderr), ("ingest", ingest.stderr)):
        assert_clean(where, text)
        assert password not in text
    state = tmp_path / ".lagoa" / "state.db"
    assert_clean("the state database", state.read_bytes())


def test_a_redacted_page_stays_valid_json_and_escapes_are_never_split() -> None:
    from lagoa.core.config import Redactor

    redactor = Redactor(["nn", "a/b"])
    page = b'{"x": "\\nnn", "y": "\\\\nn", "z": "a\\/b", "w": "\\\\/a\\u002fb"}'
    redacted = redactor.json(page)
    assert json.loads(redacted) == {"x": "\n***", "y": "\\***", "z": "***", "w": "\\/***"}
    untouched = b'{"x": "\\nn", "y": "a\\\\/b"}'  # decoded: a line break and "n"; a, backslash, /b
    assert redactor.json(untouched) == untouched


ENCODERS: dict[str, Callable[[str], str]] = {
    "raw": lambda s: s,
    "quote": urllib.parse.quote,
    "quote, nothing safe": lambda s: urllib.parse.quote(s, safe=""),
    "quote_plus": urllib.parse.quote_plus,
    "lower-case hex": lambda s: urllib.parse.quote(s, safe="").lower(),
    "JSON, ASCII only": lambda s: json.dumps(s)[1:-1],
    "JSON, as UTF-8": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "JSON, slashes escaped": lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),
    "JSON of a percent-encoded URL": lambda s: json.dumps("?k=" + urllib.parse.quote_plus(s))[1:-1],
    "Basic user:password": lambda s: base64.b64encode(f"{USER}:{s}".encode()).decode(),
    "base64 of a bearer header": lambda s: base64.b64encode(f"Bearer {s}".encode()).decode(),
}


@pytest.mark.parametrize("secret", [KEY, 'pä ss"wörd\\', "🔑-tok3n/x"])
@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_every_encoding_of_a_secret_is_redacted_in_text_and_in_json(secret: str, encoding: str) -> None:
    from lagoa.core.config import Redactor

    redactor = Redactor([secret], [(USER, secret)])
    encoded = ENCODERS[encoding](secret)
    assert encoded not in redactor.text(f"GET /x failed: {encoded}!")
    inside = encoded if encoding.startswith("JSON") else json.dumps(encoded)[1:-1]  # a JSON string's inside
    redacted = redactor.json(('{"a": "' + inside + '", "b": 1}').encode())
    assert json.loads(redacted)["b"] == 1  # still JSON
    assert secret not in json.loads(redacted)["a"] and "***" in json.loads(redacted)["a"]
    assert inside.encode() not in redacted


def test_history_written_with_a_secret_in_it_is_shown_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run recorded before the secret was redacted (by an older Lagoa) does not show it either."""
    from lagoa.state import StateStore

    monkeypatch.setenv("ECHO_KEY", KEY)
    (tmp_path / "lagoa.yml").write_text(
        "name: old\nsources:\n"
        + SOURCE.format(
            name="items",
            base="http://127.0.0.1:9",
            endpoint="/v1/items",
            user=USER,
            key="${env:ECHO_KEY}",
            password="${env:ECHO_PASSWORD}",
        )
    )
    leaked = f"GET /v1/items?api_key={urllib.parse.quote_plus(KEY)} answered 500"
    unredacted = StateStore.open("sqlite:///.lagoa/state.db", tmp_path)
    unredacted.start_run("run-old", "ingest")
    unredacted.start_attempt("run-old", "ingest", 1)
    unredacted.finish_attempt("run-old", "ingest", 1, "failed", error=leaked, log=leaked)
    unredacted.finish_run("run-old", "failed", leaked)
    unredacted.close()
    shown = lagoa(tmp_path, "runs").stdout + lagoa(tmp_path, "run", "show", "run-old", "--logs").stdout
    assert "answered 500" in shown
    assert_clean("the history shown", shown)


def test_a_secrets_manager_secret_that_cannot_be_had_is_named_and_never_shown(
    aws_server: str, echo_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    point_at(aws_server, monkeypatch)
    prefix = f"broken/{os.getpid()}"
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=f"{prefix}/api", SecretString=json.dumps({"key": KEY})
    )
    cases = {
        f"${{aws-secret:{prefix}/api#nope}}": f"the Secrets Manager secret `{prefix}/api` has no key `nope`",
        f"${{aws-secret:{prefix}/missing}}": f"cannot read the Secrets Manager secret `{prefix}/missing`: "
        "ResourceNotFoundException",
        "${env:ECHO_KEY#key}": "`${env:ECHO_KEY#key}` is no environment variable reference",
    }
    for reference, message in cases.items():
        (tmp_path / "lagoa.yml").write_text(
            "name: broken\nsources:"
            + SOURCE.format(
                name="items", base=echo_api, endpoint="/v1/items", user=USER, key=reference, password=KEY
            )
        )
        done = lagoa(tmp_path, "ingest", "items")
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
        doctor = lagoa(tmp_path, "doctor")
        assert_clean("doctor", doctor.stdout + doctor.stderr)
        assert_clean("ingest", done.stdout + done.stderr)
    (tmp_path / "lagoa.yml").write_text(
        "name: fine\nsources:"
        + SOURCE.format(
            name="items",
            base=echo_api,
            endpoint="/v1/items",
            user=USER,
            key=f"${{aws-secret:{prefix}/api#key}}",
            password=KEY,
        )
    )
    doctor = lagoa(tmp_path, "doctor")
    assert f"aws-secret:{prefix}/api#key" in doctor.stdout and "readable" in doctor.stdout
    assert_clean("doctor", doctor.stdout + doctor.stderr)
