"""``lagoa deploy terraform``: terraform.tfvars for the AWS account's Terraform; ``lagoa deploy mwaa``:
the project into the S3 bucket of an Amazon MWAA environment."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from lagoa.cli.app import handle_errors, json_option, main, project_option

if TYPE_CHECKING:
    from lagoa.cli.app import Session
    from lagoa.cli.output import Output


@main.group()
def deploy() -> None:
    """Put the project where it runs in production: an AWS account, Amazon MWAA.

    \b
    lagoa deploy terraform [--out FILE]
        terraform.tfvars for deploy/terraform (the account's buckets, Glue, Athena,
        Secrets Manager, IAM and MWAA) from lagoa.yml
    lagoa deploy mwaa --bucket B [--prefix P] [--environment NAME]
        DAGs, the project, Lagoa and MWAA's files into s3://B/P, only what changed

    AWS credentials and the region come from the usual places (AWS_PROFILE, AWS_REGION,
    ~/.aws); AWS_ENDPOINT_URL points at an S3-compatible server instead of AWS.

    \b
    Examples:
      lagoa deploy terraform
      lagoa deploy mwaa --bucket my-mwaa-bucket --dry-run
    """


@deploy.command()
@click.option("--bucket", required=True, help="The S3 bucket of the MWAA environment.")
@click.option("--prefix", default="", help="Key prefix inside the bucket (default: none).")
@click.option(
    "--environment",
    default=None,
    help="The MWAA environment: build for its Airflow version, and ask it to use the new "
    "plugins.zip, requirements.txt and startup.sh when they changed.",
)
@click.option(
    "--airflow",
    "airflow_version",
    default=None,
    metavar="VERSION",
    help="MWAA's Airflow version: 2.10.3, 2.11.0, 3.0.6, 3.2.1 or 3.3.1 "
    "(default: the environment's, else 3.3.1).",
)
@click.option(
    "--per",
    type=click.Choice(["pipeline", "domain"]),
    default="pipeline",
    show_default=True,
    help="A DAG per pipeline, or per domain.",
)
@click.option("--dry-run", is_flag=True, help="Show what would change; upload nothing.")
@json_option
@project_option
@handle_errors
def mwaa(
    bucket: str,
    prefix: str,
    environment: str | None,
    airflow_version: str | None,
    per: str,
    dry_run: bool,
    out: Output,
    session: Session,
) -> None:
    """Deploy the project to Amazon MWAA through its S3 bucket.

    \b
    Puts there: dags/ (the DAG files, the module they import, the project under
    dags/lagoa_projects/), plugins.zip (Lagoa), requirements.txt (MWAA's constraint line)
    and startup.sh (builds Lagoa's own environment on MWAA and sets LAGOA_PYTHON).
    Only what changed is uploaded; the bucket needs versioning for --environment.

    \b
    Examples:
      lagoa deploy mwaa --bucket my-mwaa-bucket --dry-run
      lagoa deploy mwaa --bucket my-mwaa-bucket --prefix retail --environment retail-prod
    """
    result = session.project.deploy_mwaa(
        bucket,
        prefix=prefix,
        environment=environment,
        airflow=airflow_version,
        per=per,  # type: ignore[arg-type]
        dry_run=dry_run,
    )
    out.mwaa_deploy(result)


@deploy.command()
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The file to write (default: deploy/terraform/terraform.tfvars in the project).",
)
@json_option
@project_option
@handle_errors
def terraform(out_path: Path | None, out: Output, session: Session) -> None:
    """Write terraform.tfvars for deploy/terraform from lagoa.yml.

    \b
    The region, the lake's bucket and prefix (storage.root: s3://bucket/prefix), the Glue
    databases' prefix (catalog.uri: glue://prefix), the Secrets Manager secrets lagoa.yml refers
    to as ${aws-secret:NAME} (names only: put their values with `aws secretsmanager
    put-secret-value`) and the MWAA environment. What is not on AWS yet is named after the
    project, with a note saying what to set in lagoa.yml.

    \b
    Examples:
      lagoa deploy terraform
      lagoa deploy terraform --out infra/lagoa.tfvars --json
    """
    out.terraform_vars(session.project.deploy_terraform(out_path))
