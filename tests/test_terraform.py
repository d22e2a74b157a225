"""deploy/terraform and `lagoa deploy terraform`: the configuration is formatted and valid; applied
against moto's server process, it creates the lake's bucket (encrypted, versioned, private, TLS
only), the Glue databases, the role Lagoa runs as (no wildcard action) and the secrets, empty; with
MWAA and Athena on (which moto does not serve) it plans, with a policy scoped to these resources;
and the tfvars Lagoa writes from lagoa.yml plan as they are, with secret names and no value.

Terraform runs from a copy of deploy/terraform in a temporary folder, with its own CLI
configuration pointing at the local provider mirror, so nothing is left in the repository and
nothing is downloaded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lagoa.cli import main
from lagoa.deploy.terraform import hcl_value, render
from lagoa.orchestrate.project import Project
from tests.aws import REGION, moto_server, point_at

pytestmark = pytest.mark.timeout(1800)

CONFIGURATION = Path(__file__).parents[1] / "deploy" / "terraform"
INSTALL = (
    "Terraform is not installed: the deploy/terraform tests need it. Install it from "
    "https://developer.hashicorp.com/terraform/install (a single binary: unzip it into a folder on "
    "PATH, e.g. /usr/local/bin), or `apt-get install terraform` from HashiCorp's apt repository, "
    "then run the tests again."
)
MIRRORS = ("/opt/tf-plugins", "/opt/*/registry.terraform.io/..", "/opt/*/*/registry.terraform.io/..")
"""Where a local mirror of the AWS provider may be (a folder holding registry.terraform.io/)."""
TIMEOUT = 600
"""Seconds any one terraform command may take (an apply waits for S3 to report its lifecycle
rules the same three times in a row: about a minute even when idle)."""
PROJECT = "lagoatest"
BUCKET = "lagoa-tf-lake"
GLUE = "tftest"
SECRETS = ["crm/api", "warehouse_password"]
ZONES = ("raw", "bronze", "silver", "gold")


@dataclass(frozen=True)
class Terraform:
    """A working copy of deploy/terraform, initialised from the local mirror."""

    folder: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["terraform", *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        if check:
            assert done.returncode == 0, f"terraform {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done

    def plan(self, *args: str) -> dict[str, Any]:
        """``terraform plan`` with ``args``; the plan as ``terraform show -json`` gives it."""
        self.run("plan", "-out=test.tfplan", *args)
        return dict(json.loads(self.run("show", "-json", "test.tfplan").stdout))


def _mirror() -> Path | None:
    for pattern in MIRRORS:
        for found in sorted(Path("/").glob(pattern.lstrip("/"))):
            if (found / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
                return found.resolve()
    return None


def _working_copy(root: Path, aws: str) -> Terraform:
    """deploy/terraform copied into ``root`` (without a developer's state, plans or tfvars) and
    initialised; ``aws``: the URL of the AWS-compatible server its commands talk to."""
    folder = root / "terraform"
    shutil.copytree(
        CONFIGURATION,
        folder,
        ignore=shutil.ignore_patterns(
            ".terraform", "*.tfstate*", "*.tfplan", "*.tfvars", ".terraform.lock.hcl"
        ),
    )
    mirror = _mirror()
    cli_config = root / "terraformrc"
    # The machine has no CLI configuration and no internet: providers come from the mirror only.
    installation = (
        f'filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }}'
        if mirror is not None
        else "direct {}"
    )
    cli_config.write_text(f"provider_installation {{\n  {installation}\n}}\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "TF_", "LAGOA_"))}
    env |= {
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "TF_DATA_DIR": str(root / "terraform-data"),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",  # no version check over the network
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "TF_VAR_endpoint_url": aws,
    }
    terraform = Terraform(folder, env)
    done = terraform.run("init", "-backend=false", "-input=false", "-no-color", check=False)
    if done.returncode != 0:
        where = f"the mirror {mirror}" if mirror else "the registry (no local mirror found under /opt)"
        pytest.fail(f"terraform init from {where} failed:\n{done.stdout}\n{done.stderr}")
    return terraform


@pytest.fixture(scope="module")
def aws() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def terraform(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Terraform:
    if shutil.which("terraform") is None:
        pytest.skip(INSTALL)  # before moto's server is started for nothing
    return _working_copy(tmp_path_factory.mktemp("deploy"), request.getfixturevalue("aws"))


BASE = [
    f"-var=project={PROJECT}",
    f"-var=lake_bucket={BUCKET}",
    "-var=lake_prefix=lake",
    f"-var=glue_prefix={GLUE}",
    f"-var=secret_names={json.dumps(SECRETS)}",
    "-var=raw_transition_days=90",
    "-var=force_destroy=true",
    "-var=secret_recovery_window_days=0",
]
WITH_EVERYTHING = [
    *BASE,
    "-var=enable_mwaa=true",
    "-var=enable_athena=true",
    "-var=vpc_id=vpc-0123456789abcdef0",
    '-var=private_subnet_ids=["subnet-0123456789abcdef0","subnet-0fedcba9876543210"]',
]


@pytest.fixture(scope="module")
def applied(terraform: Terraform) -> dict[str, Any]:
    """The S3, Glue, IAM and Secrets Manager parts applied (MWAA and Athena off); the outputs."""
    terraform.run(
        "apply", "-auto-approve", "-no-color", *BASE, "-var=enable_mwaa=false", "-var=enable_athena=false"
    )
    outputs = json.loads(terraform.run("output", "-json").stdout)
    return {name: output["value"] for name, output in outputs.items()}


@pytest.fixture
def clients(aws: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import boto3

    point_at(aws, monkeypatch)
    return {s: boto3.client(s, region_name=REGION) for s in ("s3", "glue", "iam", "secretsmanager")}


def test_the_configuration_is_formatted() -> None:
    if shutil.which("terraform") is None:
        pytest.skip(INSTALL)
    done = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(CONFIGURATION)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"},
    )
    assert done.returncode == 0, (
        f"run `terraform fmt -recursive deploy/terraform`:\n{done.stdout}{done.stderr}"
    )


def test_the_configuration_is_valid(terraform: Terraform) -> None:
    report = json.loads(terraform.run("validate", "-json").stdout)
    assert report["valid"], report["diagnostics"]
    assert report["warning_count"] == 0, report["diagnostics"]


def test_apply_creates_the_lake_glue_role_and_secrets(applied: dict[str, Any], clients: Any) -> None:
    s3, glue, iam, secrets = clients["s3"], clients["glue"], clients["iam"], clients["secretsmanager"]
    assert applied["storage_root"] == f"s3://{BUCKET}/lake"
    assert applied["glue_catalog_uri"] == f"glue://{GLUE}?region={REGION}"
    assert "athena_workgroup" not in applied and "mwaa_environment" not in applied  # null: not output

    encryption = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert encryption[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    blocked = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert blocked == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    (deny,) = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
    housekeeping = rules["old-versions-and-unfinished-uploads"]
    assert housekeeping["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert housekeeping["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    assert rules["raw-transition"]["Filter"]["Prefix"] == "lake/raw/"
    assert rules["raw-transition"]["Transitions"][0]["Days"] == 90

    databases = {d["Name"]: d for d in glue.get_databases()["DatabaseList"]}
    assert set(databases) == {f"{GLUE}_{zone}" for zone in ZONES}
    assert databases[f"{GLUE}_bronze"]["LocationUri"] == f"s3://{BUCKET}/lake/bronze"

    role = iam.get_role(RoleName=f"{PROJECT}-lagoa")["Role"]
    trusted = {
        p for s in role["AssumeRolePolicyDocument"]["Statement"] for p in _list(s["Principal"]["Service"])
    }
    assert trusted == {"airflow.amazonaws.com", "airflow-env.amazonaws.com"}
    policy = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="lagoa")["PolicyDocument"]
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert {"LakeBuckets", "LakeList", "LakeObjects", "GlueTables", "Secrets"} == set(statements)
    _assert_least_privilege(policy["Statement"], set(applied["secret_arns"].values()))
    assert _list(statements["LakeObjects"]["Resource"]) == [f"arn:aws:s3:::{BUCKET}/lake/*"]
    assert statements["LakeList"]["Condition"] == {"StringLike": {"s3:prefix": ["lake", "lake/*"]}}

    assert sorted(applied["secret_arns"]) == SECRETS
    for name, arn in applied["secret_arns"].items():
        assert secrets.describe_secret(SecretId=name)["ARN"] == arn
        assert secrets.list_secret_version_ids(SecretId=name)["Versions"] == []  # no value from Terraform


def test_plan_with_mwaa_and_athena(applied: dict[str, Any], terraform: Terraform) -> None:
    plan = terraform.plan("-no-color", *WITH_EVERYTHING)
    changes = {c["address"]: c for c in plan["resource_changes"]}
    created = {address for address, c in changes.items() if c["change"]["actions"] == ["create"]}
    assert {
        "module.athena[0].aws_athena_workgroup.lake",
        "module.mwaa[0].aws_mwaa_environment.lagoa",
        "module.mwaa[0].aws_s3_bucket.mwaa",
        "module.mwaa[0].aws_security_group.mwaa",
    } <= created
    assert {
        f'module.mwaa[0].aws_cloudwatch_log_group.mwaa["{kind}"]' for kind in ("Task", "Scheduler")
    } <= created
    assert not any("delete" in c["change"]["actions"] for c in changes.values()), "the applied parts stay"

    workgroup = changes["module.athena[0].aws_athena_workgroup.lake"]["change"]["after"]["configuration"][0]
    assert workgroup["enforce_workgroup_configuration"] is True
    assert workgroup["result_configuration"][0]["output_location"] == f"s3://{BUCKET}/lake/athena-results/"
    environment = changes["module.mwaa[0].aws_mwaa_environment.lagoa"]["change"]["after"]
    assert environment["dag_s3_path"] == "dags" and environment["name"] == PROJECT

    policy = changes["module.iam.aws_iam_role_policy.lagoa"]["change"]["after"]["policy"]
    assert isinstance(policy, str), "the role's policy is known at plan time"
    statements = json.loads(policy)["Statement"]
    assert {"AthenaQueries", "MwaaBucket", "MwaaLogs", "MwaaMetrics"} <= {s["Sid"] for s in statements}
    _assert_least_privilege(statements, set(applied["secret_arns"].values()))
    logs = next(s for s in statements if s["Sid"] == "MwaaLogs")
    assert _list(logs["Resource"]) == [f"arn:aws:logs:{REGION}:123456789012:log-group:airflow-{PROJECT}-*"]


def test_mwaa_needs_a_network(terraform: Terraform) -> None:
    done = terraform.run("plan", "-no-color", *BASE, "-var=enable_mwaa=true", check=False)
    assert done.returncode != 0 and "two private_subnet_ids" in done.stderr


def test_lagoa_writes_tfvars_that_plan(
    terraform: Terraform, tmp_path: Path, clients: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tfvars of a project on S3 and Glue with Secrets Manager references: names, no values."""
    value = "s3cr3t-v4lue-Th4t-Must-N0t-Leak"
    clients["secretsmanager"].create_secret(Name="shop/api", SecretString=json.dumps({"token": value}))
    clients["secretsmanager"].create_secret(Name="shop_pg", SecretString=value)
    monkeypatch.setenv("CRM_TOKEN", value)
    (tmp_path / "lagoa.yml").write_text(
        "name: shop\n"
        "storage:\n  root: s3://shop-lake/prod/\n  region: eu-central-1\n"
        "catalog:\n  uri: glue://shop?region=eu-central-1\n"
        "state:\n  uri: postgresql://lagoa:${aws-secret:shop_pg}@db.internal/lagoa\n"
        "sources:\n"
        "  leads:\n    kind: http\n    base_url: https://crm.example.com/leads\n"
        "    auth:\n      type: bearer\n      token: ${aws-secret:shop/api#token}\n"
        "  orders:\n    kind: http\n    base_url: https://erp.example.com/orders\n"
        "    auth:\n      type: bearer\n      token: ${env:CRM_TOKEN}\n"
    )
    out = tmp_path / "deploy" / "terraform.tfvars"
    result = CliRunner().invoke(
        main, ["deploy", "terraform", "-p", str(tmp_path), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    written = json.loads(result.output)
    assert written["secret_names"] == ["shop/api", "shop_pg"] and written["notes"] == []
    text = out.read_text()
    assert value not in text and value not in result.output
    assert 'secret_names = ["shop/api", "shop_pg"]' in text
    assert 'lake_bucket = "shop-lake"' in text and 'lake_prefix = "prod"' in text
    assert 'region  = "eu-central-1"' in text and 'glue_prefix = "shop"' in text

    fmt = terraform.run("fmt", "-check", "-diff", str(out), check=False)
    assert fmt.returncode == 0, f"the tfvars are not laid out as terraform fmt lays them out:\n{fmt.stdout}"
    # A state of its own keeps the applied one as it is.
    plan = terraform.plan("-no-color", f"-var-file={out}", "-state=tfvars.tfstate", "-var=enable_mwaa=false")
    variables = {name: v["value"] for name, v in plan["variables"].items()}
    assert variables["lake_bucket"] == "shop-lake" and variables["secret_names"] == ["shop/api", "shop_pg"]
    created = {c["address"] for c in plan["resource_changes"]}
    assert {
        'module.secrets.aws_secretsmanager_secret.lagoa["shop/api"]',
        "module.athena[0].aws_athena_workgroup.lake",
    } <= created
    assert value not in json.dumps(plan)


def test_a_local_project_gets_derived_names(make_project: Any) -> None:
    project: Project = make_project("name: Retail Shop 2\n")
    written = project.deploy_terraform()
    assert written.path == project.root / "deploy" / "terraform" / "terraform.tfvars"
    assert written.values["project"] == "Retail-Shop-2"
    assert written.values["lake_bucket"] == "retail-shop-2-lake" and written.values["lake_prefix"] == "lake"
    assert written.values["glue_prefix"] == "retail_shop_2"
    assert written.values["mwaa_environment"] == "Retail-Shop-2"
    notes = " ".join(written.notes)
    assert "storage.root: s3://retail-shop-2-lake/lake" in notes
    assert "catalog.uri: glue://retail_shop_2?region=" in notes


TRICKY = [
    'a "quoted" word',
    "back\\slash and \\n not a newline",
    "${aws-secret:not_a_reference}",
    "$${already} and $ alone and %{ if true }x%{ endif }",
    "line\nbreak\r\ttab",
    "control \x01 \x7f and separators \u2028\u2029",
    "ünïcödé ✓",
]


def test_hcl_strings_read_back_as_written(tmp_path: Path) -> None:
    """Every string ``hcl_value`` writes is read by Terraform as exactly the string given."""
    if shutil.which("terraform") is None:
        pytest.skip(INSTALL)
    (tmp_path / "main.tf").write_text(
        'variable "texts" {\n  type = list(string)\n}\n\noutput "texts" {\n  value = var.texts\n}\n'
    )
    (tmp_path / "terraform.tfvars").write_text(f"texts = {hcl_value(TRICKY)}\n")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
    for command in (["init", "-backend=false"], ["apply", "-auto-approve", "-no-color"]):
        done = subprocess.run(
            ["terraform", *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
        assert done.returncode == 0, done.stderr
    shown = subprocess.run(
        ["terraform", "output", "-json", "texts"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert json.loads(shown.stdout) == TRICKY


def test_render_lays_out_every_group() -> None:
    text = render({"project": "p", "region": "r", "secret_names": [], "mwaa_environment": "m"})
    assert 'project = "p"\nregion  = "r"\n' in text
    assert "secret_names = []\n" in text and "lake_bucket" not in text


def _list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _assert_least_privilege(statements: list[dict[str, Any]], secret_arns: set[str]) -> None:
    """No statement allows a wildcard action, and each resource is one of this configuration's
    (the two account-level actions AWS authorises on no resource excepted)."""
    scoped = (
        f"arn:aws:s3:::{BUCKET}",
        f"arn:aws:glue:{REGION}:123456789012:catalog",
        *(f"arn:aws:glue:{REGION}:123456789012:database/{GLUE}_{zone}" for zone in ZONES),
        *(f"arn:aws:glue:{REGION}:123456789012:table/{GLUE}_{zone}/*" for zone in ZONES),
        *secret_arns,
        f"arn:aws:athena:{REGION}:123456789012:workgroup/{PROJECT}",
        f"arn:aws:athena:{REGION}:123456789012:datacatalog/AwsDataCatalog",
        f"arn:aws:airflow:{REGION}:123456789012:environment/{PROJECT}",
        f"arn:aws:s3:::{BUCKET}-mwaa",
        f"arn:aws:logs:{REGION}:123456789012:log-group:airflow-{PROJECT}-*",
        f"arn:aws:logs:{REGION}:123456789012:log-group:*",
        f"arn:aws:sqs:{REGION}:*:airflow-celery-*",
    )
    for statement in statements:
        actions = _list(statement["Action"])
        assert all("*" not in action for action in actions), statement
        assert statement["Effect"] == "Allow" and "NotAction" not in statement, statement
        if "NotResource" in statement:  # MWAA's own queue key, through SQS only
            assert statement["Condition"]["StringEquals"]["kms:ViaService"] == f"sqs.{REGION}.amazonaws.com"
            continue
        for resource in _list(statement["Resource"]):
            if resource == "*":
                assert statement["Sid"] in {"MwaaAccountChecks", "MwaaCloudWatchMetrics"}, statement
            else:
                assert any(resource == s or resource.startswith(f"{s}/") for s in scoped), resource


def test_plan_one_bucket_per_zone_with_a_kms_key(terraform: Terraform) -> None:
    key = f"arn:aws:kms:{REGION}:123456789012:key/0d5e1c3a-1b2c-4d5e-8f90-0123456789ab"
    plan = terraform.plan(
        "-no-color",
        "-state=per-zone.tfstate",
        *WITH_EVERYTHING,
        "-var=bucket_layout=per_zone",
        f"-var=kms_key_arn={key}",
    )
    changes = {c["address"]: c["change"]["after"] for c in plan["resource_changes"]}
    buckets = {
        after["bucket"] for a, after in changes.items() if a.startswith("module.lake.aws_s3_bucket.lake[")
    }
    assert buckets == {f"{BUCKET}-{zone}" for zone in ZONES}
    encryption = changes['module.lake.aws_s3_bucket_server_side_encryption_configuration.lake["raw"]'][
        "rule"
    ][0]
    assert encryption["apply_server_side_encryption_by_default"][0] == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": key,
    }
    outputs = plan["planned_values"]["outputs"]
    assert "value" not in outputs["storage_root"] or outputs["storage_root"]["value"] is None
    assert outputs["zone_roots"]["value"]["gold"] == f"s3://{BUCKET}-gold"
    workgroup = changes["module.athena[0].aws_athena_workgroup.lake"]["configuration"][0]
    assert workgroup["result_configuration"][0]["output_location"] == f"s3://{BUCKET}-gold/athena-results/"
    raw_rules = changes['module.lake.aws_s3_bucket_lifecycle_configuration.lake["raw"]']["rule"]
    assert "raw-transition" in {r["id"] for r in raw_rules}
