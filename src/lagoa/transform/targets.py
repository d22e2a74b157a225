"""dbt targets on distributed engines (Athena, Trino, Snowflake, Redshift), derived from lagoa.yml:
where the lake is (``storage.root``, the Glue catalog's database prefix, the region) and what
``dbt.targets.<adapter>`` adds. A secret is never written: ``${env:NAME}`` becomes
``{{ env_var('NAME') }}``, and ``${aws-secret:…}`` an environment variable the engine's host exports.

Models read Lagoa's tables through the generated sources (``source('silver', …)``); on an engine
these are the catalog's namespaces (``<prefix>_silver`` in Glue), which :func:`source_schema` maps
by ``target.type``, so one sources file serves the local target and every engine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lagoa.core.config import PROJECT_FILE, SECRET_PATTERN, ProjectConfig
from lagoa.core.config.dbt_targets import Layer, TargetConfig
from lagoa.core.errors import ConfigError

LAYERS: tuple[Layer, ...] = ("bronze", "silver")
SECRET_VARIABLE = "DBT_ENV_SECRET_{adapter}_{field}"
"""The variable a ``${aws-secret:…}`` value is read from: dbt keeps ``DBT_ENV_SECRET_*`` values
out of its logs and allows them in profiles only."""


@dataclass(frozen=True)
class Lakehouse:
    """Where the lake is, as the profiles need it."""

    root: str
    """``storage.root`` without a trailing slash."""
    region: str | None
    glue_prefix: str | None
    """The Glue catalog's database prefix (``glue://<prefix>``); None when the catalog is not Glue."""

    @classmethod
    def of(cls, config: ProjectConfig) -> Lakehouse:
        glue = config.catalog.glue
        prefix = glue.prefix if glue else None
        region = (
            config.storage.region
            or (glue.options.get("region") if glue else None)
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
        )
        return cls(config.storage.root.rstrip("/"), region, prefix)

    @property
    def on_s3(self) -> bool:
        return self.root.startswith("s3://")

    def namespace(self, layer: str) -> str:
        """Lagoa's ``layer`` as the catalog (and so every engine reading it) names it."""
        return f"{self.glue_prefix}_{layer}" if self.glue_prefix else layer


@dataclass
class Output:
    """One target of a profile being derived: its fields, and what the machine running dbt must
    provide (environment variables, setup outside dbt)."""

    adapter: str
    fields: dict[str, Any] = field(default_factory=dict)
    env: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def put(self, name: str, value: Any, *, required: bool = True, hint: str | None = None) -> None:
        """Set ``name``; a missing required value is a ConfigError naming its key in lagoa.yml."""
        if value is None:
            if required:
                raise ConfigError(
                    f"the {self.adapter} profile needs `{name}`",
                    file=PROJECT_FILE,
                    key=f"dbt.targets.{self.adapter}.{name}",
                    hint=hint or f"add `{name}:` under dbt.targets.{self.adapter} in lagoa.yml",
                )
            return
        self.fields[name] = self._template(name, value) if isinstance(value, str) else value

    def _template(self, name: str, value: str) -> str:
        def variable(match: re.Match[str]) -> str:
            kind, secret, key = match.group(1), match.group(2), match.group(3)
            if kind == "env":
                env = secret
            else:
                env = SECRET_VARIABLE.format(adapter=self.adapter, field=name).upper()
                which = f"key `{key}` of " if key else ""
                self.notes.append(
                    f"`{name}` is {which}the Secrets Manager secret `{secret}`: export it as {env} "
                    "where dbt runs (on MWAA, in the startup script; see docs/dbt-targets.md)"
                )
            if env not in self.env:
                self.env.append(env)
            return f"{{{{ env_var('{env}') }}}}"

        return SECRET_PATTERN.sub(variable, value)


def _common(output: Output, target: TargetConfig, config: ProjectConfig, lake: Lakehouse) -> None:
    output.put("schema", target.schema_name or lake.namespace("gold"))
    output.put("threads", target.threads or config.dbt.threads)


def _athena(config: ProjectConfig, lake: Lakehouse, output: Output) -> None:
    target = config.dbt.targets.athena
    not_s3 = f"storage.root `{lake.root}` is not on S3: set dbt.targets.athena.{{}} to an s3:// folder"
    output.put(
        "region_name",
        target.region_name or lake.region,
        hint="set storage.region (or AWS_REGION), or dbt.targets.athena.region_name",
    )
    output.put(
        "s3_staging_dir",
        target.s3_staging_dir or (f"{lake.root}/athena-results/" if lake.on_s3 else None),
        hint=not_s3.format("s3_staging_dir") + " for Athena's query results",
    )
    output.put(
        "s3_data_dir",
        target.s3_data_dir or (f"{lake.root}/dbt/" if lake.on_s3 else None),
        hint=not_s3.format("s3_data_dir") + " for the tables dbt builds",
    )
    output.put("s3_data_naming", target.s3_data_naming)
    output.put("database", target.database)
    output.put("work_group", target.work_group, required=False)
    output.put("aws_profile_name", target.aws_profile_name, required=False)
    _common(output, target, config, lake)
    if lake.glue_prefix is None:
        output.notes.append(
            "the lake's catalog is not Glue: Athena reads Lagoa's tables only once they are in Glue "
            "(catalog.uri: glue://<prefix>?region=…)"
        )


def _trino(config: ProjectConfig, lake: Lakehouse, output: Output) -> None:
    target = config.dbt.targets.trino
    method = target.method or ("ldap" if target.password else "none")
    output.put("method", method)
    output.put("host", target.host)
    output.put("port", target.port)
    output.put("user", target.user)
    if method == "ldap":
        output.put("password", target.password, hint="ldap logs in with a password: write ${env:NAME}")
    elif target.password:
        raise ConfigError(
            f"a password is for `method: ldap`, not `{method}`",
            file=PROJECT_FILE,
            key="dbt.targets.trino.password",
            hint="remove the password, or set method: ldap",
        )
    output.put("database", target.database)
    output.put("http_scheme", target.http_scheme)
    _common(output, target, config, lake)
    output.notes.append(
        f"the Trino catalog `{target.database}` must be an Iceberg catalog over the lake's "
        + ("Glue databases (iceberg.catalog.type=glue)" if lake.glue_prefix else "catalog")
    )


def _snowflake(config: ProjectConfig, lake: Lakehouse, output: Output) -> None:
    target = config.dbt.targets.snowflake
    output.put(
        "account", target.account, hint="add `account:` (e.g. myorg-myaccount) under dbt.targets.snowflake"
    )
    output.put("user", target.user)
    output.put("authenticator", target.authenticator, required=False)
    if target.private_key_path:
        output.put("private_key_path", target.private_key_path)
        output.put("private_key_passphrase", target.private_key_passphrase, required=False)
    else:
        output.put(
            "password",
            target.password,
            required=target.authenticator in (None, "snowflake", "username_password_mfa"),
            hint="write password: ${env:NAME}, or log in with an authenticator or private_key_path",
        )
    output.put("role", target.role, required=False)
    output.put("warehouse", target.warehouse)
    output.put("database", target.database)
    _common(output, target, config, lake)
    output.notes.append(
        "Snowflake reads Lagoa's tables as Iceberg tables through a catalog integration and an "
        "external volume on the lake's bucket, created in the sources' schemas (see docs/dbt-targets.md)"
    )


def _redshift(config: ProjectConfig, lake: Lakehouse, output: Output) -> None:
    target = config.dbt.targets.redshift
    output.put("method", target.method)
    output.put("host", target.host)
    output.put("port", target.port)
    output.put("user", target.user)
    output.put("dbname", target.dbname)
    if target.method == "database":
        output.put("password", target.password, hint="write password: ${env:NAME} (or use method: iam)")
    else:
        if target.password:
            raise ConfigError(
                "`method: iam` takes no password (it asks AWS for temporary credentials)",
                file=PROJECT_FILE,
                key="dbt.targets.redshift.password",
                hint="remove the password, or set method: database",
            )
        output.put("cluster_id", target.cluster_id, required=False)
        output.put("iam_profile", target.iam_profile, required=False)
        output.put("region", target.region or lake.region, required=False)
    _common(output, target, config, lake)
    if lake.glue_prefix:
        for layer in LAYERS:
            schema = target.source_schemas.get(layer) or lake.namespace(layer)
            output.notes.append(
                f"Spectrum: CREATE EXTERNAL SCHEMA IF NOT EXISTS {schema} FROM DATA CATALOG DATABASE "
                f"'{lake.namespace(layer)}' IAM_ROLE '<role arn>'"
            )
    else:
        output.notes.append("Redshift reads Lagoa's tables through Spectrum, which needs the Glue catalog")


@dataclass(frozen=True)
class Adapter:
    """A dbt adapter Lagoa writes targets for."""

    package: str
    """What ``pip install`` puts where dbt runs."""
    derive: Callable[[ProjectConfig, Lakehouse, Output], None]


ADAPTERS: dict[str, Adapter] = {
    "athena": Adapter("dbt-athena-community", _athena),
    "trino": Adapter("dbt-trino", _trino),
    "snowflake": Adapter("dbt-snowflake", _snowflake),
    "redshift": Adapter("dbt-redshift", _redshift),
}


def derive(config: ProjectConfig, adapter: str) -> Output:
    """The target of ``adapter`` (a key of :data:`ADAPTERS`) for this project."""
    output = Output(adapter, {"type": adapter})
    ADAPTERS[adapter].derive(config, Lakehouse.of(config), output)
    return output


def source_schemas(config: ProjectConfig, layer: Layer) -> dict[str, str]:
    """Where each engine finds Lagoa's ``layer``, by adapter."""
    lake = Lakehouse.of(config)
    targets = config.dbt.targets
    return {
        name: getattr(targets, name).source_schemas.get(layer) or lake.namespace(layer) for name in ADAPTERS
    }


def source_schema(config: ProjectConfig, layer: Layer) -> str:
    """The ``schema`` of the ``layer`` source: the layer itself when every engine names it so,
    else a Jinja expression dbt renders by ``target.type`` (the layer for the local target)."""
    mapped = {name: schema for name, schema in source_schemas(config, layer).items() if schema != layer}
    if not mapped:
        return layer
    table = ", ".join(f'"{name}": "{schema}"' for name, schema in mapped.items())
    return f'{{{{ {{{table}}}.get(target.type, "{layer}") }}}}'
