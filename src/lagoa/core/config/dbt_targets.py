"""``dbt.targets``: what ``lagoa dbt profile`` cannot derive from the rest of lagoa.yml, per dbt
adapter. Every field is optional here; a value a target cannot do without is asked for, naming
its key, when that target's profile is written, so a project configures only the engines it uses.

Any string may be ``${env:NAME}`` (written into the profile as ``{{ env_var('NAME') }}``) or
``${aws-secret:NAME}`` (written as an environment variable the engine's host must export).
Credentials must be one of the two: a profile never holds a secret in clear.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from lagoa.core.config.base import Model
from lagoa.core.config.secrets import SECRET_PATTERN

Layer = Literal["bronze", "silver"]
SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def _reference(value: str | None) -> str | None:
    if value is not None and not SECRET_PATTERN.fullmatch(value.strip()):
        raise ValueError(
            "is a credential and would be written in clear into profiles.yml; write "
            "${env:NAME} or ${aws-secret:NAME} (${aws-secret:NAME#key} for a key of a JSON secret)"
        )
    return value.strip() if value is not None else None


def _schema_name(value: str) -> str:
    if not SCHEMA_NAME.match(value):
        raise ValueError(f"`{value}` is no schema name: letters, digits, _ and $, not first a digit")
    return value


class TargetConfig(Model):
    """What every adapter's target takes."""

    schema_name: str | None = Field(default=None, alias="schema")
    """Schema (database on Athena) dbt builds the models in; default: the lake's gold namespace as
    the catalog names it (``<prefix>_gold`` in Glue)."""
    source_schemas: dict[Layer, str] = Field(default_factory=dict)
    """Where this engine finds Lagoa's bronze and silver tables, by layer; default: the lake's
    namespaces as the catalog names them (``<prefix>_bronze``, ``<prefix>_silver`` in Glue)."""
    threads: int | None = Field(default=None, ge=1)
    """Models dbt builds at once on this engine; default: ``dbt.threads``."""

    @field_validator("schema_name")
    @classmethod
    def _schema(cls, value: str | None) -> str | None:
        return _schema_name(value) if value is not None else None

    @field_validator("source_schemas")
    @classmethod
    def _source_schemas(cls, value: dict[Layer, str]) -> dict[Layer, str]:
        return {layer: _schema_name(name) for layer, name in value.items()}


class AthenaTarget(TargetConfig):
    """Amazon Athena (the ``dbt-athena-community`` adapter) over the lake's Glue catalog."""

    region_name: str | None = None
    """AWS region; default: ``storage.region``, the Glue catalog URI's ``region=``, then
    ``AWS_REGION`` / ``AWS_DEFAULT_REGION``."""
    s3_staging_dir: str | None = None
    """Where Athena writes query results; default ``<storage.root>/athena-results/``."""
    s3_data_dir: str | None = None
    """Where dbt-built tables' files go; default ``<storage.root>/dbt/``."""
    s3_data_naming: Literal["unique", "table", "table_unique", "schema_table", "schema_table_unique"] = (
        "schema_table_unique"
    )
    """How a table's folder under ``s3_data_dir`` is named; Iceberg tables need a unique one."""
    database: str = "awsdatacatalog"
    """Athena's data catalog (Glue's is ``awsdatacatalog``)."""
    work_group: str | None = None
    """Athena work group; default: the account's ``primary``."""
    aws_profile_name: str | None = None
    """AWS CLI profile to take credentials from; default: the standard credential chain."""


class TrinoTarget(TargetConfig):
    """Trino (the ``dbt-trino`` adapter) with an Iceberg catalog over the lake."""

    host: str | None = None
    """Trino's coordinator host (required)."""
    port: int = Field(default=443, ge=1, le=65535)
    user: str | None = None
    """User Trino runs the queries as (required)."""
    password: str | None = None
    """``${env:…}`` or ``${aws-secret:…}``; given, the login method is ``ldap``."""
    method: Literal["none", "ldap", "oauth"] | None = None
    """Login method; default ``ldap`` with a password, else ``none``."""
    database: str = "iceberg"
    """The Trino catalog of the lake's Iceberg tables."""
    http_scheme: Literal["http", "https"] = "https"

    @field_validator("password")
    @classmethod
    def _credential(cls, value: str | None) -> str | None:
        return _reference(value)


class SnowflakeTarget(TargetConfig):
    """Snowflake (the ``dbt-snowflake`` adapter)."""

    account: str | None = None
    """Account identifier, e.g. ``myorg-myaccount`` (required)."""
    user: str | None = None
    """User dbt logs in as (required)."""
    password: str | None = None
    """``${env:…}`` or ``${aws-secret:…}``; needed unless an authenticator or a key pair logs in."""
    authenticator: str | None = None
    """``externalbrowser``, ``snowflake_jwt`` (key pair), ``oauth``, an Okta URL…; default: password."""
    private_key_path: str | None = None
    """Key pair login: the private key file on the machine that runs dbt."""
    private_key_passphrase: str | None = None
    """``${env:…}`` or ``${aws-secret:…}``: the passphrase of an encrypted private key."""
    role: str | None = None
    warehouse: str | None = None
    """Virtual warehouse that runs the queries (required)."""
    database: str | None = None
    """Database dbt builds in, holding the Iceberg tables registered from the lake (required)."""

    @field_validator("password", "private_key_passphrase")
    @classmethod
    def _credential(cls, value: str | None) -> str | None:
        return _reference(value)


class RedshiftTarget(TargetConfig):
    """Amazon Redshift (the ``dbt-redshift`` adapter), reading the lake through Spectrum."""

    host: str | None = None
    """Cluster or serverless workgroup endpoint (required)."""
    port: int = Field(default=5439, ge=1, le=65535)
    user: str | None = None
    """Database user (required)."""
    dbname: str = "dev"
    method: Literal["database", "iam"] = "database"
    """``database``: user and password; ``iam``: temporary credentials from the AWS chain."""
    password: str | None = None
    """``${env:…}`` or ``${aws-secret:…}``; required with ``method: database``."""
    cluster_id: str | None = None
    """With ``iam`` on a provisioned cluster: its identifier."""
    iam_profile: str | None = None
    """With ``iam``: the AWS CLI profile; default: the standard credential chain."""
    region: str | None = None
    """With ``iam``: the AWS region; default: the lake's (as for Athena)."""

    @field_validator("password")
    @classmethod
    def _credential(cls, value: str | None) -> str | None:
        return _reference(value)


class DbtTargets(Model):
    """Settings of ``lagoa dbt profile --target <adapter>``, one section per adapter."""

    athena: AthenaTarget = Field(default_factory=AthenaTarget)
    trino: TrinoTarget = Field(default_factory=TrinoTarget)
    snowflake: SnowflakeTarget = Field(default_factory=SnowflakeTarget)
    redshift: RedshiftTarget = Field(default_factory=RedshiftTarget)
