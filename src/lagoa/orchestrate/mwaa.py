"""``lagoa deploy mwaa``: the project's DAGs, Lagoa and the project itself into the S3 bucket of an
Amazon MWAA environment, uploading only what changed, and (when an environment is named) MWAA
asked to use the new plugins, requirements and startup script.

What goes where is :mod:`lagoa.deploy.mwaa.package`'s; how it is uploaded is
:mod:`lagoa.deploy.mwaa.upload`'s. MWAA picks up DAG changes by itself; only a new plugins.zip,
requirements.txt or startup script needs an environment update (which restarts Airflow), so the
update is asked for only when one of those differs from what the environment uses.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lagoa.core.errors import DeployError
from lagoa.deploy.mwaa.package import DEFAULT_MWAA_VERSION, PROJECTS, SHARED, bundle, mwaa_version
from lagoa.deploy.mwaa.requirements import runtime_requirements
from lagoa.deploy.mwaa.upload import (
    Change,
    apply,
    aws_call,
    current_version,
    describe_environment,
    key_for,
    plan,
    update_environment,
)
from lagoa.orchestrate.airflow import Per, dag_sources

if TYPE_CHECKING:
    from lagoa.workspace import Workspace


@dataclass(frozen=True)
class MwaaDeploy:
    bucket: str
    prefix: str
    airflow: str
    """The MWAA Airflow version the DAGs and requirements were built for."""
    changes: list[Change]
    folder: Path
    """Where the deployed objects were also written, to look at."""
    uploaded: bool
    """False for a dry run."""
    environment: str | None = None
    update: dict[str, str] | None = None
    """The update asked of the environment; None when none was needed (or none was named)."""
    environment_arn: str | None = None
    notes: list[str] = field(default_factory=list)


def _client(service: str) -> Any:
    import os

    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    # An endpoint of one's own (a VPC endpoint, an S3-compatible server) takes requests as they
    # are: without the `api.` host prefix botocore puts before MWAA's AWS endpoint.
    overridden = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL")
    try:
        return boto3.client(
            service,
            # AWS_REGION, which MWAA and the other SDKs set, where botocore reads only its own.
            region_name=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None,
            config=Config(inject_host_prefix=not overridden),
        )
    except BotoCoreError as exc:
        raise DeployError(
            f"cannot reach AWS {service}: {exc}", hint="set AWS_REGION (or a profile's region)"
        ) from None


def deploy_mwaa(
    workspace: Workspace,
    *,
    bucket: str,
    prefix: str = "",
    environment: str | None = None,
    airflow: str | None = None,
    per: Per = "pipeline",
    dry_run: bool = False,
) -> MwaaDeploy:
    mwaa = _client("mwaa") if environment else None
    described = describe_environment(mwaa, environment) if mwaa is not None and environment else None
    if described is not None:
        running = str(described["AirflowVersion"])
        if airflow is not None and airflow != running:
            raise DeployError(
                f"the MWAA environment {environment} runs Airflow {running}, not {airflow}",
                hint="leave out --airflow to build for the environment's version",
            )
        airflow = running
    version = mwaa_version(airflow or DEFAULT_MWAA_VERSION)
    notes = []
    if not version.has_deadlines:
        notes.append(f"Airflow {version.airflow} has neither SLAs nor Deadline Alerts: SLAs are not exported")
    project = workspace.config.name
    dags = dag_sources(
        workspace,
        f"{PROJECTS}/{project}",
        version="2" if version.major == "2" else "3",
        per=per,
        deadlines=version.has_deadlines,
    )
    objects = bundle(
        project=project,
        dag_files=dags,
        project_root=workspace.root,
        requirements=runtime_requirements(version.python),
        version=version,
        lagoa_version=importlib.metadata.version("lagoa"),
    )
    folder = _write_locally(workspace, objects)
    s3 = _client("s3")
    if described is not None:
        _require_versioning(s3, bucket)
    planned = plan(s3, bucket, prefix, objects, project=project, shared=SHARED)
    result = MwaaDeploy(
        bucket, prefix, version.airflow, planned.changes, folder, not dry_run, environment, notes=notes
    )
    if dry_run:
        return result
    versions = apply(s3, planned, objects)
    if mwaa is None or described is None or environment is None:
        return result
    request = _update_request(s3, bucket, prefix, versions)
    if all(described.get(key) == value for key, value in request.items()):
        return result  # the environment already uses these: nothing for MWAA to restart for
    arn = update_environment(mwaa, environment, request)
    return replace(result, update=request, environment_arn=arn)


def _write_locally(workspace: Workspace, objects: dict[str, bytes]) -> Path:
    folder = workspace.root / ".lagoa" / "mwaa"
    if folder.exists():
        shutil.rmtree(folder)
    for key, data in objects.items():
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def _require_versioning(s3: Any, bucket: str) -> None:
    state = aws_call(f"read the versioning of s3://{bucket}", lambda: s3.get_bucket_versioning(Bucket=bucket))
    if state.get("Status") != "Enabled":
        raise DeployError(
            f"s3://{bucket} has no versioning: MWAA reads plugins.zip, requirements.txt and "
            "startup.sh by their S3 version",
            hint=f"aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled",
        )


def _update_request(s3: Any, bucket: str, prefix: str, versions: dict[str, str]) -> dict[str, str]:
    def version(relative: str) -> str:
        found = versions.get(relative) or current_version(s3, bucket, key_for(prefix, relative))
        if found is None:
            raise DeployError(f"s3://{bucket}/{key_for(prefix, relative)} has no S3 version")
        return found

    return {
        "SourceBucketArn": f"arn:aws:s3:::{bucket}",
        "DagS3Path": key_for(prefix, "dags"),
        "PluginsS3Path": key_for(prefix, "plugins.zip"),
        "PluginsS3ObjectVersion": version("plugins.zip"),
        "RequirementsS3Path": key_for(prefix, "requirements.txt"),
        "RequirementsS3ObjectVersion": version("requirements.txt"),
        "StartupScriptS3Path": key_for(prefix, "startup.sh"),
        "StartupScriptS3ObjectVersion": version("startup.sh"),
    }
