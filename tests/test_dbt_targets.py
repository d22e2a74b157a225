"""`lagoa dbt profile --target …`: dbt targets for Athena, Trino, Snowflake and Redshift derived
from a project whose lake is on S3 with a Glue catalog; secrets only as env_var(); merging."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from lagoa.cli import main
from lagoa.core.errors import ConfigError
from lagoa.orchestrate.project import Project
from lagoa.transform.targets import source_schema

SNOWFLAKE_PASSWORD = "snow-Pa55word-value"
REDSHIFT_PASSWORD = "redshift-Pa55word-value"
LAKE = """
name: shop
storage:
  root: s3://lake-bucket/shop/
  region: eu-west-1
catalog:
  uri: glue://shop?region=eu-west-1
dbt:
  threads: 3
"""
TARGETS = """
  targets:
    athena:
      work_group: analytics
    trino:
      host: trino.example.com
      user: dbt
      password: ${aws-secret:prod/trino#password}
    snowflake:
      account: ${env:SNOWFLAKE_ACCOUNT}
      user: DBT
      role: TRANSFORMER
      password: ${env:SNOWFLAKE_PASSWORD}
      warehouse: TRANSFORMING
      database: ANALYTICS
    redshift:
      host: shop.123456.eu-west-1.redshift-serverless.amazonaws.com
      user: dbt
      password: ${env:REDSHIFT_PASSWORD}
      source_schemas: {silver: spectrum_silver}
"""
DBT_PROJECT = "name: shop\nconfig-version: 2\nprofile: shop_profile\nmodel-paths: [models]\n"
ORDERS = """
sources:
  orders:
    format: csv
    path: data/orders*.csv
    primary_key: [order_id]
    columns: {order_id: long, amount: double}
"""

Make = Callable[[str], Project]


@pytest.fixture
def make(tmp_path: Path) -> Make:
    """A project (lagoa.yml as given, dedented) with a dbt project asking for `shop_profile`."""

    def build(config: str) -> Project:
        (tmp_path / "lagoa.yml").write_text(textwrap.dedent(config))
        (tmp_path / "dbt" / "models").mkdir(parents=True, exist_ok=True)
        (tmp_path / "dbt" / "dbt_project.yml").write_text(DBT_PROJECT)
        return Project.load(tmp_path)

    return build


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNOWFLAKE_ACCOUNT", "myorg-shop")
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", SNOWFLAKE_PASSWORD)
    monkeypatch.setenv("REDSHIFT_PASSWORD", REDSHIFT_PASSWORD)


def outputs(path: Path) -> dict[str, Any]:
    profile: dict[str, Any] = yaml.safe_load(path.read_text())["shop_profile"]
    return profile


@pytest.mark.usefixtures("secrets")
def test_each_engine_gets_a_target_derived_from_the_lake(make: Make) -> None:
    project = make(LAKE + TARGETS)
    written = {t: project.dbt_profile(t) for t in ("athena", "trino", "snowflake", "redshift")}
    path = project.root / "dbt" / "profiles.yml"
    assert {w.path for w in written.values()} == {path}
    profile = outputs(path)
    # The local target stays the default; the engines' targets sit beside it.
    assert profile["target"] == "lagoa"
    assert profile["outputs"]["lagoa"]["type"] == "duckdb"
    assert profile["outputs"]["athena"] == {
        "type": "athena",
        "region_name": "eu-west-1",
        "s3_staging_dir": "s3://lake-bucket/shop/athena-results/",
        "s3_data_dir": "s3://lake-bucket/shop/dbt/",
        "s3_data_naming": "schema_table_unique",
        "database": "awsdatacatalog",
        "work_group": "analytics",
        "schema": "shop_gold",
        "threads": 3,
    }
    assert profile["outputs"]["trino"] == {
        "type": "trino",
        "method": "ldap",
        "host": "trino.example.com",
        "port": 443,
        "user": "dbt",
        "password": "{{ env_var('DBT_ENV_SECRET_TRINO_PASSWORD') }}",
        "database": "iceberg",
        "http_scheme": "https",
        "schema": "shop_gold",
        "threads": 3,
    }
    assert profile["outputs"]["snowflake"] == {
        "type": "snowflake",
        "account": "{{ env_var('SNOWFLAKE_ACCOUNT') }}",
        "user": "DBT",
        "password": "{{ env_var('SNOWFLAKE_PASSWORD') }}",
        "role": "TRANSFORMER",
        "warehouse": "TRANSFORMING",
        "database": "ANALYTICS",
        "schema": "shop_gold",
        "threads": 3,
    }
    assert profile["outputs"]["redshift"] == {
        "type": "redshift",
        "method": "database",
        "host": "shop.123456.eu-west-1.redshift-serverless.amazonaws.com",
        "port": 5439,
        "user": "dbt",
        "dbname": "dev",
        "password": "{{ env_var('REDSHIFT_PASSWORD') }}",
        "schema": "shop_gold",
        "threads": 3,
    }
    text = path.read_text()
    assert SNOWFLAKE_PASSWORD not in text and REDSHIFT_PASSWORD not in text and "myorg-shop" not in text

    assert written["athena"].command == f"dbt build --target athena --profiles-dir {path.parent}"
    assert written["athena"].package == "dbt-athena-community" and not written["athena"].default
    assert written["snowflake"].env == ["SNOWFLAKE_ACCOUNT", "SNOWFLAKE_PASSWORD"]
    # A Secrets Manager secret cannot be an env_var(): the profile reads a variable the host exports.
    assert written["trino"].env == ["DBT_ENV_SECRET_TRINO_PASSWORD"]
    assert any("`prod/trino`" in n and "DBT_ENV_SECRET_TRINO_PASSWORD" in n for n in written["trino"].notes)
    # Redshift reads the lake through Spectrum's external schemas over the Glue databases.
    assert any(
        "spectrum_silver FROM DATA CATALOG DATABASE 'shop_silver'" in n for n in written["redshift"].notes
    )


@pytest.mark.usefixtures("secrets")
def test_dbt_itself_renders_the_templates_to_the_secrets(make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """dbt's own profile renderer (no adapter needed) reads the env_var() references."""
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    project = make(LAKE + TARGETS)
    project.dbt_profile("snowflake")
    monkeypatch.setenv("DBT_ENV_SECRET_TRINO_PASSWORD", "from-the-startup-script")
    set_invocation_context(dict(os.environ))
    rendered = ProfileRenderer({}).render_data(outputs(project.root / "dbt" / "profiles.yml"))
    assert rendered["outputs"]["snowflake"]["password"] == SNOWFLAKE_PASSWORD
    assert rendered["outputs"]["snowflake"]["account"] == "myorg-shop"


@pytest.mark.parametrize(
    ("lake", "environment", "region"),
    [
        (LAKE, {}, "eu-west-1"),  # storage.region
        (LAKE.replace("  region: eu-west-1\n", ""), {}, "eu-west-1"),  # the Glue URI's region=
        (
            LAKE.replace("  region: eu-west-1\n", "").replace("?region=eu-west-1", ""),
            {"AWS_REGION": "us-east-2"},
            "us-east-2",
        ),
    ],
)
def test_athena_takes_the_lake_region(
    make: Make, monkeypatch: pytest.MonkeyPatch, lake: str, environment: dict[str, str], region: str
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    written = make(lake).dbt_profile("athena")
    assert outputs(written.path)["outputs"]["athena"]["region_name"] == region


@pytest.mark.parametrize(
    ("config", "target", "key"),
    [
        (LAKE + "  targets: {snowflake: {user: DBT, password: '${env:X}'}}", "snowflake", "account"),
        (LAKE + "  targets: {snowflake: {account: a, user: u, warehouse: w}}", "snowflake", "password"),
        (LAKE, "trino", "host"),
        (LAKE + "  targets: {redshift: {host: h, user: u}}", "redshift", "password"),
        ("name: shop\nstorage: {root: lake}\n", "athena", "region_name"),
        ("name: shop\nstorage: {root: lake, region: eu-west-1}\n", "athena", "s3_staging_dir"),
    ],
)
def test_a_missing_value_is_a_config_error_naming_its_key(
    make: Make, monkeypatch: pytest.MonkeyPatch, config: str, target: str, key: str
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    project = make(config)
    with pytest.raises(ConfigError) as error:
        project.dbt_profile(target)
    assert error.value.key == f"dbt.targets.{target}.{key}"
    assert f"dbt.targets.{target}" in str(error.value)
    assert not (project.root / "dbt" / "profiles.yml").exists()


def test_a_credential_in_clear_is_refused_when_lagoa_yml_loads(make: Make) -> None:
    with pytest.raises(ConfigError) as error:
        make(LAKE + "  targets: {snowflake: {password: hunter2}}")
    assert error.value.key == "dbt.targets.snowflake.password"
    assert "${env:NAME}" in str(error.value) and "hunter2" not in str(error.value)


@pytest.mark.usefixtures("secrets")
def test_writing_merges_into_an_existing_profiles_file(make: Make, tmp_path: Path) -> None:
    project = make(LAKE + TARGETS)
    path = project.root / "dbt" / "profiles.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "other": {"target": "dev", "outputs": {"dev": {"type": "postgres", "host": "db"}}},
                "shop_profile": {"target": "dev", "outputs": {"dev": {"type": "duckdb", "path": "x.db"}}},
                "config": {"send_anonymous_usage_stats": False},
            }
        )
    )
    project.dbt_profile("athena")
    project.dbt_profile("trino")
    data = yaml.safe_load(path.read_text())
    assert data["other"] == {"target": "dev", "outputs": {"dev": {"type": "postgres", "host": "db"}}}
    assert data["config"] == {"send_anonymous_usage_stats": False}
    assert data["shop_profile"]["target"] == "dev"
    assert list(data["shop_profile"]["outputs"]) == ["dev", "athena", "trino"]

    # Written again: the target is replaced in place; --default makes it dbt's default.
    written = project.dbt_profile("athena", default=True)
    data = yaml.safe_load(path.read_text())
    assert written.default and data["shop_profile"]["target"] == "athena"
    assert list(data["shop_profile"]["outputs"]) == ["dev", "athena", "trino"]
    assert not list(path.parent.glob("*.tmp*"))

    # Elsewhere: a folder (or a profiles.yml in it); dbt reads no other file name.
    elsewhere = project.dbt_profile("athena", out=tmp_path / "profiles")
    assert elsewhere.path == tmp_path / "profiles" / "profiles.yml"
    assert elsewhere.command.endswith(
        f"--profiles-dir {tmp_path / 'profiles'} --project-dir {project.root / 'dbt'}"
    )
    with pytest.raises(ConfigError, match=r"named profiles\.yml"):
        project.dbt_profile("athena", out=tmp_path / "athena.yml")


def test_sources_resolve_to_the_glue_databases_on_engines_and_to_layers_locally(make: Make) -> None:
    from dbt.clients.jinja import get_rendered

    config = make(LAKE + TARGETS).config
    expression = source_schema(config, "silver")
    for engine, schema in {
        "athena": "shop_silver",
        "trino": "shop_silver",
        "redshift": "spectrum_silver",
    }.items():
        assert get_rendered(expression, {"target": {"type": engine}}) == schema
    assert get_rendered(expression, {"target": {"type": "duckdb"}}) == "silver"
    assert get_rendered(source_schema(config, "bronze"), {"target": {"type": "snowflake"}}) == "shop_bronze"
    # A lake outside Glue, with no engine naming the layers otherwise: the plain layer name.
    assert source_schema(make("name: shop\n").config, "silver") == "silver"


def test_dbt_parses_the_sources_file_and_reads_the_local_layer(make: Make) -> None:
    project = make(
        "name: shop\n" + ORDERS + "dbt:\n  targets: {redshift: {source_schemas: {silver: spectrum_silver}}}\n"
    )
    (project.root / "dbt" / "models" / "orders.sql").write_text(
        "select * from {{ source('silver', 'orders') }}"
    )
    project.dbt_sources()
    assert project.dbt(["parse"]).success
    manifest = json.loads(project.workspace.dbt_manifest.read_text())
    assert manifest["sources"]["source.shop.silver.orders"]["schema"] == "silver"
    sources_file = yaml.safe_load((project.root / "dbt" / "models" / "_lagoa_sources.yml").read_text())
    assert "spectrum_silver" in sources_file["sources"][-1]["schema"]


def test_the_command_prints_where_and_how_in_both_forms(make: Make) -> None:
    project = make(LAKE)
    runner = CliRunner()
    result = runner.invoke(main, ["dbt", "profile", "--target", "athena", "-p", str(project.root)])
    assert result.exit_code == 0, result.output
    assert "pip install dbt-athena-community" in result.output
    assert f"run: dbt build --target athena --profiles-dir {project.root / 'dbt'}" in result.output
    assert "+table_type: iceberg" in result.output

    result = runner.invoke(
        main, ["dbt", "-p", str(project.root), "profile", "-t", "athena", "--json", "--default"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["target"] == "athena" and data["default"] is True
    assert data["path"] == str(project.root / "dbt" / "profiles.yml")

    result = runner.invoke(main, ["dbt", "profile", "--target", "athna", "-p", str(project.root)])
    assert result.exit_code == 2 and "did you mean `athena`" in result.output
