"""``terraform.tfvars`` for the Terraform configuration of an AWS account running Lagoa
(``deploy/terraform/``), from a project's settings: where the lake is (``storage.root``), how the
Glue databases are named (``catalog.uri``), the region, the Secrets Manager secrets the project
refers to, and the MWAA environment.

Only names are written, never a secret's value: Terraform creates the secrets empty, and their
values are put with ``aws secretsmanager put-secret-value``. A setting that is not on AWS yet (a
local ``storage.root``, a SQLite catalog) gets a name derived from the project's, and a note
saying which lagoa.yml key to change once the account exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lagoa.core.config import ProjectConfig
from lagoa.core.config.secrets import SECRET_PATTERN
from lagoa.core.config.storage import GlueUri
from lagoa.core.errors import DeployError
from lagoa.deploy.mwaa.package import DEFAULT_MWAA_VERSION
from lagoa.storage.s3 import split_location

DEFAULT_REGION = "eu-west-1"
TFVARS = Path("deploy/terraform/terraform.tfvars")
"""Where the file goes by default, relative to the project."""
PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
"""What deploy/terraform's ``project`` variable accepts (it prefixes names of roles, work groups)."""
MWAA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,79}$")
GLUE_PREFIX = re.compile(r"^[a-z][a-z0-9_]*$")
SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
"""What Secrets Manager accepts as a name; a reference by ARN names a secret that exists already."""

Value = str | bool | int | list[str]


@dataclass(frozen=True)
class TfvarsWritten:
    """What ``lagoa deploy terraform`` wrote."""

    path: Path
    values: dict[str, Value]
    """The variables, in the file's order."""
    secret_names: list[str]
    """The Secrets Manager entries the file names (whose values Terraform never holds)."""
    notes: list[str] = field(default_factory=list)
    """Settings that were derived rather than read, and what to change in lagoa.yml."""


def tfvars(config: ProjectConfig, environ: Mapping[str, str]) -> tuple[dict[str, Value], list[str]]:
    """The Terraform variables for ``config`` and the notes about them; ``environ`` gives the
    region when lagoa.yml does not (``AWS_REGION``, ``AWS_DEFAULT_REGION``)."""
    notes: list[str] = []
    project = _name(config.name, "[^A-Za-z0-9_-]", "-", 40, first="[A-Za-z0-9]")
    if project != config.name:
        notes.append(
            f"the project name `{config.name}` is written as `{project}` (letters, digits, _ and - only)"
        )
    glue = config.catalog.glue
    region = (
        config.storage.region
        or (glue.options.get("region") if glue else None)
        or environ.get("AWS_REGION")
        or environ.get("AWS_DEFAULT_REGION")
    )
    if not region:
        region = DEFAULT_REGION
        notes.append(f"no region in lagoa.yml or AWS_REGION: using {DEFAULT_REGION}; set storage.region")
    bucket, prefix = _lake(config, project, notes)
    values: dict[str, Value] = {
        "project": project,
        "region": region,
        "lake_bucket": bucket,
        "lake_prefix": prefix,
        "glue_prefix": _glue_prefix(glue, project, region, notes),
        "secret_names": secret_names(config, notes),
        "mwaa_environment": _mwaa_environment(project),
        "mwaa_airflow_version": DEFAULT_MWAA_VERSION,
    }
    work_group = config.dbt.targets.athena.work_group
    if work_group and not SECRET_PATTERN.search(work_group):
        values["athena_workgroup"] = work_group
    return values, notes


def write_tfvars(config: ProjectConfig, path: Path, environ: Mapping[str, str]) -> TfvarsWritten:
    """Write ``terraform.tfvars`` for ``config`` at ``path``."""
    values, notes = tfvars(config, environ)
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "it is a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(values), encoding="utf-8")
    except OSError as exc:
        raise DeployError(
            f"cannot write {str(path)[:200]}: {exc.strerror}",
            hint="give --out the file to write, e.g. deploy/terraform/terraform.tfvars",
        ) from None
    return TfvarsWritten(path, values, secret_names(config), notes)


def secret_names(config: ProjectConfig, notes: list[str] | None = None) -> list[str]:
    """The Secrets Manager secrets the project refers to (``${aws-secret:NAME}``,
    ``${aws-secret:NAME#key}``), each once. Every setting of lagoa.yml is in its model (an
    unknown key is an error), so the model's strings are the file's. A reference by ARN is to a
    secret that exists already: it is left out, with a note."""
    found: set[str] = set()
    for text in _strings(config.model_dump()):
        for match in SECRET_PATTERN.finditer(text):
            if match.group(1) != "aws-secret":
                continue
            name = match.group(2)
            if SECRET_NAME.match(name):
                found.add(name)
            elif notes is not None:
                notes.append(
                    f"the secret `{name}` is not created: it is referred to by ARN (or its name is "
                    "not one Secrets Manager accepts), so it is expected to exist"
                )
    return sorted(found)


GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("The project and its region.", ("project", "region")),
    ("The lake: storage.root is s3://<lake_bucket>/<lake_prefix>.", ("lake_bucket", "lake_prefix")),
    ("Glue: catalog.uri is glue://<glue_prefix>?region=<region>.", ("glue_prefix",)),
    (
        "Secrets Manager: created empty; put each value with `aws secretsmanager put-secret-value`.",
        ("secret_names",),
    ),
    ("Athena and MWAA.", ("athena_workgroup", "mwaa_environment", "mwaa_airflow_version")),
)
HEADER = """\
# Written by `lagoa deploy terraform` from lagoa.yml: run it again after changing lagoa.yml.
# Every other variable of variables.tf keeps its default unless set here.
"""
NETWORK = """\
# MWAA runs in a VPC of yours: two private subnets in different availability zones.
# vpc_id             = "vpc-..."
# private_subnet_ids = ["subnet-...", "subnet-..."]
# Or leave MWAA out:
# enable_mwaa = false
"""


def render(values: Mapping[str, Value]) -> str:
    """The text of a ``.tfvars`` file, laid out as ``terraform fmt`` lays it out."""
    blocks = [HEADER]
    for comment, keys in GROUPS:
        present = [key for key in keys if key in values]
        if not present:
            continue
        width = max(len(key) for key in present)
        lines = [f"{key.ljust(width)} = {hcl_value(values[key])}" for key in present]
        blocks.append("\n".join([f"# {comment}", *lines]) + "\n")
    blocks.append(NETWORK)
    return "\n".join(blocks)


def hcl_value(value: Value) -> str:
    """``value`` as an HCL literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(hcl_string(item) for item in value) + "]"
    return hcl_string(value)


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def hcl_string(value: str) -> str:
    """``value`` as a quoted HCL string that reads back as exactly ``value``: backslashes, quotes
    and control characters escaped, and ``${`` / ``%{`` doubled so that no part of it is read
    as an interpolation or a template directive."""
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out).replace("${", "$${").replace("%{", "%%{") + '"'


def _lake(config: ProjectConfig, project: str, notes: list[str]) -> tuple[str, str]:
    """The bucket and prefix of ``storage.root`` when it is on S3; else ones derived from the
    project's name, with a note."""
    root = config.storage.root
    if root.startswith("s3://"):
        bucket, prefix = split_location(root)
        return bucket, prefix.strip("/")
    bucket = _name(project.lower(), "[^a-z0-9-]", "-", 51, first="[a-z0-9]") + "-lake"
    notes.append(
        f"storage.root ({root}) is not on S3: the lake's bucket is named {bucket} (bucket names are "
        f"global: change lake_bucket if it is taken); then set storage.root: s3://{bucket}/lake"
    )
    return bucket, "lake"


def _glue_prefix(glue: GlueUri | None, project: str, region: str, notes: list[str]) -> str:
    if glue is not None and GLUE_PREFIX.match(glue.prefix):
        return glue.prefix
    prefix = _name(project.lower(), "[^a-z0-9_]", "_", 200, first="[a-z]")
    why = (
        f"catalog.uri's prefix `{glue.prefix}` is no Glue database prefix Athena reads (lowercase "
        "letters, digits, _)"
        if glue is not None
        else "catalog.uri is not a Glue catalog"
    )
    notes.append(
        f"{why}: the Glue databases are {prefix}_raw, {prefix}_bronze, {prefix}_silver and "
        f"{prefix}_gold; set catalog.uri: glue://{prefix}?region={region}"
    )
    return prefix


def _mwaa_environment(project: str) -> str:
    return project if MWAA_NAME.match(project) else f"lagoa-{project}"[:80]


def _name(text: str, forbidden: str, separator: str, length: int, *, first: str) -> str:
    """``text`` as a name: each run of ``forbidden`` characters made one ``separator``, at most
    ``length`` characters, starting with a character ``first`` matches (``lagoa`` goes first
    when it does not)."""
    name = re.sub(f"{forbidden}+", separator, text).strip("-_")
    if not re.match(first, name):
        name = f"lagoa{separator}{name}"
    return name[:length].rstrip("-_")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
