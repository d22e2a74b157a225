"""`lagoa deploy mwaa` against an S3-compatible server process (moto's server mode) and, for the
MWAA API that moto does not serve, a stand-in HTTP server that answers GetEnvironment and records
UpdateEnvironment: exactly the expected objects land in the bucket, a second deploy uploads
nothing, a change uploads only itself, the environment is asked to update only when MWAA must
restart, and no secret reaches the bucket. The startup script is run for real: it builds Lagoa's
own environment, from which the deployed project's tasks run."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from lagoa.cli import main
from lagoa.core.errors import DeployError
from lagoa.orchestrate.project import Project
from tests.aws import REGION, moto_server, point_at
from tests.conftest import copy_example

BUCKET = "lagoa-mwaa"
PROJECT_FILES = "dags/lagoa_projects/retail_lakehouse"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    with moto_server() as url:
        yield url


class MwaaStandIn:
    """Answers MWAA's GetEnvironment with what it holds, and records every UpdateEnvironment
    request (applying it, as MWAA would once the update is done)."""

    def __init__(self, airflow_version: str) -> None:
        self.environment: dict[str, Any] = {"Name": "retail-prod", "AirflowVersion": airflow_version}
        self.updates: list[dict[str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _known(self) -> bool:
                if self.path == f"/environments/{stand_in.environment['Name']}":
                    return True
                self._reply(404, {"Message": "no such environment"})
                return False

            def do_GET(self) -> None:
                if self._known():
                    self._reply(200, {"Environment": stand_in.environment})

            def do_PATCH(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self._known():
                    stand_in.updates.append(body)
                    stand_in.environment.update(body)
                    self._reply(
                        200, {"Arn": "arn:aws:airflow:eu-west-1:123456789012:environment/retail-prod"}
                    )

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def aws(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An S3 client of the server, with the environment Lagoa's deploy reads; a fresh bucket."""
    import boto3

    point_at(s3_server, monkeypatch)
    s3 = boto3.client("s3")
    for bucket in s3.list_buckets().get("Buckets", []):
        versions = s3.get_paginator("list_object_versions").paginate(Bucket=bucket["Name"])
        for page in versions:
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket=bucket["Name"], Key=item["Key"], VersionId=item["VersionId"])
        s3.delete_bucket(Bucket=bucket["Name"])
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


@pytest.fixture
def mwaa(monkeypatch: pytest.MonkeyPatch) -> Iterator[MwaaStandIn]:
    stand_in = MwaaStandIn("2.11.0")
    monkeypatch.setenv("AWS_ENDPOINT_URL_MWAA", stand_in.url)
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


def _keys(s3: Any, prefix: str = "") -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def _versions(s3: Any) -> dict[str, list[str]]:
    """Every key's versions, newest first."""
    found: dict[str, list[str]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
        for item in page.get("Versions", []):
            found.setdefault(item["Key"], []).append(item["VersionId"])
    return found


def _read(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _example(tmp_path: Path) -> Path:
    folder = copy_example("retail_lakehouse", tmp_path / "retail")
    # What a working folder also holds, none of which belongs on MWAA.
    (folder / ".env").write_text("SLACK_HOOK=https://hooks.example/not-for-the-bucket\n")
    (folder / "dbt" / "target").mkdir()
    (folder / "dbt" / "target" / "manifest.json").write_text("{}")
    (folder / ".lagoa").mkdir()
    (folder / ".lagoa" / "state.db").write_bytes(b"local state")
    (folder / "samples" / "__pycache__").mkdir()
    (folder / "samples" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    return folder


def _project_files(folder: Path, *, leave_out: tuple[str, ...] = ()) -> set[str]:
    """The example's own files, as the test knows them: what the example ships, minus the
    working files :func:`_example` added."""
    added = {".env", "dbt/target/manifest.json", ".lagoa/state.db", "samples/__pycache__/x.cpython-311.pyc"}
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    files = {f for f in files if not f.startswith(".lagoa/")}  # the deploy's local copy among them
    return files - added - set(leave_out)


def _deploy(folder: Path, *args: str) -> Result:
    """`lagoa deploy mwaa` of ``folder`` to the test bucket, from the command line."""
    return CliRunner().invoke(main, ["deploy", "mwaa", "--bucket", BUCKET, *args, "-p", str(folder)])


def test_the_bucket_holds_exactly_the_dags_the_project_lagoa_and_mwaa_files(aws: Any, tmp_path: Path) -> None:
    folder = _example(tmp_path)
    (folder / ".lagoaignore").write_text("# not needed on MWAA\nsamples/*.jsonl\n")
    result = _deploy(folder, "--prefix", "prod")
    assert result.exit_code == 0, result.output

    project = _project_files(folder, leave_out=("samples/web_events.jsonl",))
    expected = {
        "prod/dags/retail_lakehouse.daily.py",
        "prod/dags/lagoa_airflow.py",
        "prod/dags/.airflowignore",
        "prod/plugins.zip",
        "prod/requirements.txt",
        "prod/startup.sh",
        "prod/.lagoa/deploy-retail_lakehouse.json",
    } | {f"prod/{PROJECT_FILES}/{name}" for name in project}
    assert _keys(aws) == expected
    assert f"+ {PROJECT_FILES}/lagoa.yml" in result.output
    assert f"{len(expected) - 1} added, 0 changed, 0 removed, 0 unchanged" in result.output

    for name in project:
        assert _read(aws, f"prod/{PROJECT_FILES}/{name}") == (folder / name).read_bytes(), name
    dag = _read(aws, "prod/dags/retail_lakehouse.daily.py").decode()
    assert 'PROJECT = project_dir(__file__, "lagoa_projects/retail_lakehouse")' in dag
    assert "for Airflow 3." in dag  # the default, MWAA's Airflow 3.3.1
    assert _read(aws, "prod/dags/.airflowignore") == b"lagoa_projects/\n"
    assert _read(aws, "prod/requirements.txt").decode().splitlines()[-1] == (
        '--constraint "https://raw.githubusercontent.com/apache/airflow/constraints-3.3.1/constraints-3.12.txt"'
    )
    plugins = zipfile.ZipFile(io.BytesIO(_read(aws, "prod/plugins.zip")))
    names = set(plugins.namelist())
    source = Path(sys.modules["lagoa"].__file__ or "").parent
    shipped = {
        f"lagoa_runtime/lagoa/{p.relative_to(source).as_posix()}"
        for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped <= names
    assert (
        plugins.read("lagoa_runtime/lagoa/orchestrate/mwaa.py")
        == (source / "orchestrate" / "mwaa.py").read_bytes()
    )
    assert plugins.read(".airflowignore") == b"lagoa_runtime/\n"
    startup = _read(aws, "prod/startup.sh").decode()
    assert "duckdb==" in startup and "dbt-core==" in startup and "export LAGOA_PYTHON=" in startup


def test_a_deploy_uploads_only_what_changed_and_removes_only_what_it_put_there(
    aws: Any, tmp_path: Path
) -> None:
    folder = _example(tmp_path)
    project = Project.load(folder)
    first = project.deploy_mwaa(BUCKET, per="domain")
    assert {c.kind for c in first.changes} == {"added"}
    aws.put_object(Bucket=BUCKET, Key="dags/written_by_hand.py", Body=b"# not Lagoa's")
    before = _versions(aws)

    again = project.deploy_mwaa(BUCKET, per="domain")
    assert {c.kind for c in again.changes} == {"unchanged"}
    manifest = ".lagoa/deploy-retail_lakehouse.json"
    assert {k: v for k, v in _versions(aws).items() if k != manifest} == {
        k: v for k, v in before.items() if k != manifest
    }

    model = folder / "dbt" / "models" / "staging" / "stg_products.sql"
    model.write_text(model.read_text() + "\n-- reviewed\n")
    project = Project.load(folder)
    changed = project.deploy_mwaa(BUCKET, per="pipeline")  # the domain DAGs give way to one
    kinds = {c.key: c.kind for c in changed.changes if c.kind != "unchanged"}
    domain_dags = {k for k in before if k.startswith("dags/retail_lakehouse.") and k.endswith(".py")}
    assert kinds == {
        f"{PROJECT_FILES}/dbt/models/staging/stg_products.sql": "changed",
        "dags/retail_lakehouse.daily.py": "added",
        **{key: "removed" for key in domain_dags},
    }
    keys = _keys(aws)
    assert "dags/written_by_hand.py" in keys
    assert not domain_dags & keys
    assert _read(aws, f"{PROJECT_FILES}/dbt/models/staging/stg_products.sql") == model.read_bytes()
    after = _versions(aws)
    for key in ("plugins.zip", "requirements.txt", "startup.sh"):
        assert after[key] == before[key], key  # not uploaded again


def test_the_environment_is_asked_to_update_only_when_mwaa_must_restart(
    aws: Any, mwaa: MwaaStandIn, tmp_path: Path
) -> None:
    folder = _example(tmp_path)
    result = _deploy(folder, "--prefix", "env", "--environment", "retail-prod")
    assert result.exit_code == 0, result.output
    assert "asked MWAA to update retail-prod" in result.output
    versions = _versions(aws)
    assert mwaa.updates == [
        {
            "SourceBucketArn": f"arn:aws:s3:::{BUCKET}",
            "DagS3Path": "env/dags",
            "PluginsS3Path": "env/plugins.zip",
            "PluginsS3ObjectVersion": versions["env/plugins.zip"][0],
            "RequirementsS3Path": "env/requirements.txt",
            "RequirementsS3ObjectVersion": versions["env/requirements.txt"][0],
            "StartupScriptS3Path": "env/startup.sh",
            "StartupScriptS3ObjectVersion": versions["env/startup.sh"][0],
        }
    ]
    # Built for the environment's Airflow 2.11: its DAG flavour, its constraints, Python 3.11.
    assert "for Airflow 2.11." in _read(aws, "env/dags/retail_lakehouse.daily.py").decode()
    assert "constraints-2.11.0/constraints-3.11.txt" in _read(aws, "env/requirements.txt").decode()

    model = folder / "dbt" / "models" / "staging" / "stg_products.sql"
    model.write_text(model.read_text() + "\n-- reviewed\n")
    result = _deploy(folder, "--prefix", "env", "--environment", "retail-prod")
    assert result.exit_code == 0, result.output
    assert "no update needed" in result.output
    assert len(mwaa.updates) == 1  # MWAA syncs dags/ by itself

    with pytest.raises(DeployError, match=r"runs Airflow 2\.11\.0, not 3\.3\.1"):
        Project.load(folder).deploy_mwaa(BUCKET, prefix="env", environment="retail-prod", airflow="3.3.1")
    with pytest.raises(DeployError, match="no such environment"):
        Project.load(folder).deploy_mwaa(BUCKET, prefix="env", environment="retail-dev")
    aws.create_bucket(Bucket="unversioned", CreateBucketConfiguration={"LocationConstraint": REGION})
    with pytest.raises(DeployError, match="has no versioning"):
        Project.load(folder).deploy_mwaa("unversioned", environment="retail-prod")
    assert _keys(aws, "") >= {"env/startup.sh"} and not aws.list_objects_v2(Bucket="unversioned").get(
        "Contents"
    )


def test_a_dry_run_uploads_nothing_and_unknown_versions_are_refused(aws: Any, tmp_path: Path) -> None:
    folder = _example(tmp_path)
    dry = Project.load(folder).deploy_mwaa(BUCKET, dry_run=True)
    assert dry.changes and {c.kind for c in dry.changes} == {"added"}
    assert _keys(aws) == set()
    assert (dry.folder / "startup.sh").is_file()  # what would be uploaded, to look at
    with pytest.raises(DeployError, match=r"does not know MWAA's Airflow 2\.9\.2"):
        Project.load(folder).deploy_mwaa(BUCKET, airflow="2.9.2")
    # Airflow 3.0 has no Deadline Alerts: the DAGs must not use them.
    result = Project.load(folder).deploy_mwaa(BUCKET, airflow="3.0.6")
    assert any("SLAs are not exported" in note for note in result.notes)
    for key in _keys(aws, "dags/retail_lakehouse."):
        assert "deadline" not in _read(aws, key).decode()


def test_no_secret_reaches_the_bucket(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {"SLACK_HOOK": "https://hooks.example/T000/B000/s3cr3t-hook", "API_TOKEN": "tok-9f8e7d6c5b4a"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    folder = _example(tmp_path)
    config = (folder / "lagoa.yml").read_text()
    (folder / "lagoa.yml").write_text(
        config + '\nnotifications:\n  - {kind: slack, url: "${env:SLACK_HOOK}", events: [failure]}\n'
    )
    (folder / ".env").write_text(f"SLACK_HOOK={secrets['SLACK_HOOK']}\nAPI_TOKEN={secrets['API_TOKEN']}\n")
    result = _deploy(folder)
    assert result.exit_code == 0, result.output
    contents = {key: _read(aws, key) for key in _keys(aws)}
    plugins = zipfile.ZipFile(io.BytesIO(contents["plugins.zip"]))
    contents |= {f"plugins.zip:{name}": plugins.read(name) for name in plugins.namelist()}
    for key, data in contents.items():
        for value in secrets.values():
            assert value.encode() not in data, key
    for value in secrets.values():
        assert value not in result.output


def test_the_startup_script_builds_the_environment_the_deployed_tasks_run_in(
    aws: Any, tmp_path: Path
) -> None:
    """MWAA's layout on this machine: the bucket's dags/ and plugins.zip where MWAA unpacks them,
    startup.sh sourced as MWAA sources it; then a deployed task runs with its LAGOA_PYTHON."""
    folder = _example(tmp_path)
    Project.load(folder).deploy_mwaa(BUCKET)
    home = tmp_path / "usr-local-airflow"
    for key in _keys(aws, "dags/"):
        path = home / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_read(aws, key))
    zipfile.ZipFile(io.BytesIO(_read(aws, "plugins.zip"))).extractall(home / "plugins")
    (home / "startup.sh").write_bytes(_read(aws, "startup.sh"))
    deployed = home / PROJECT_FILES
    script = f'. "{home / "startup.sh"}" && "$LAGOA_PYTHON" -m lagoa ingest crm_leads --json -p "{deployed}"'
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAGOA_", "PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run(
        ["sh", "-c", script],
        env={**env, "AIRFLOW_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    python = home / "lagoa-env" / "bin" / "python"
    assert python.is_file()
    # Lagoa came from plugins.zip, in an environment of its own, not from the one running this test.
    where = subprocess.run(
        [str(python), "-c", "import lagoa, sys; print(lagoa.__file__); print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where == [
        str(home / "plugins" / "lagoa_runtime" / "lagoa" / "__init__.py"),
        str(home / "lagoa-env"),
    ]
    summary = json.loads(done.stdout)
    loaded = {s["source"]: s for s in summary["sources"]}
    assert loaded["crm_leads"]["silver_rows"] > 0
    shutil.rmtree(home / "lagoa-env")
