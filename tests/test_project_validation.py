"""A project is checked when it is loaded, and its lake lives where it says: table names that are
safe as folders, Iceberg identifiers and SQL views; YAML without duplicate keys; settings naming
columns the data has; lakes inside project folders whatever characters their paths hold."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from lagoa.core.config import FileSource, load_config
from lagoa.core.errors import ConfigError
from lagoa.core.names import ERROR_COLUMNS, LINEAGE
from lagoa.lake import Lake
from lagoa.lake.catalog import sqlite_uri
from lagoa.lake.schema import iceberg_schema, iceberg_type
from lagoa.orchestrate.project import Project
from lagoa.storage.local import LocalStorage
from tests.conftest import count
from tests.postgres import postgres_server

CSV = "id,amount,ts\n1,2.5,2024-01-01 10:00:00\n2,3.0,2024-01-02 11:00:00\n"
MORE = "id,amount,ts\n3,4.5,2024-01-03 12:00:00\n"


def write_project(folder: Path, config: str, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lagoa.yml").write_text(textwrap.dedent(config), encoding="utf-8")
    for name, content in (files or {"data/a.csv": CSV}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content, encoding="utf-8")
    return folder


def config_error(tmp_path: Path, config: str) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(write_project(tmp_path, config) / "lagoa.yml")
    return str(raised.value)


def file_source(extra: str = "", name: str = "a") -> str:
    """A project with one CSV source; ``extra`` adds lines to it (indented by four spaces)."""
    return f"name: t\nsources:\n  {name}:\n    format: csv\n    path: data/*.csv\n{extra}"


def every_path(folder: Path) -> list[Path]:
    return [folder, *folder.rglob("*")]


# Paths


@pytest.mark.parametrize("folder", ["my project/café", "100% #1 it's/ação"])
def test_a_project_whose_path_has_spaces_and_accents_keeps_its_lake_inside(
    tmp_path: Path, folder: str
) -> None:
    root = write_project(
        tmp_path / folder,
        file_source("    primary_key: [id]\n    partition_by: [day(ts)]\n"),
    )
    project = Project.load(root)
    project.ingest()
    assert count(project, "select count(*) from silver.a") == 2
    (root / "data" / "b.csv").write_text(MORE)
    Project.load(root).ingest()
    assert count(Project.load(root), "select count(*) from silver.a") == 3

    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.split("/")[0]]
    assert not [p for p in every_path(tmp_path) if "%20" in p.name or "%C3" in p.name]
    lake = root.resolve() / ".lagoa" / "lake"
    for info in project.tables():
        assert info.metadata_location is not None
        assert Path(info.metadata_location).is_relative_to(lake), info.metadata_location
        assert Path(info.metadata_location).is_file()
    silver = project.lake.table("silver.a")
    assert silver is not None
    assert all(Path(path).is_relative_to(lake) for path in project.lake.data_files(silver))


@pytest.mark.parametrize("folder", ["team [a]", "x*y", "what?"])
def test_a_lake_folder_holding_glob_characters_is_refused_naming_them(tmp_path: Path, folder: str) -> None:
    """DuckDB reads * ? [ ] in any path as a pattern: refused before anything is written."""
    root = write_project(tmp_path / folder, file_source("    primary_key: [id]\n"))
    with pytest.raises(
        ConfigError, match=r"key `storage\.root`: the lake's folder .* holds one of \* \? \[ \]"
    ):
        Project.load(root).ingest()
    assert not (root / ".lagoa" / "lake").exists()


def test_a_lake_whose_tables_have_file_uris_keeps_working(tmp_path: Path) -> None:
    """Lakes made before locations were plain paths name their tables ``file:///…``."""
    root = write_project(tmp_path / "project", file_source("    primary_key: [id]\n"))
    lake_folder = root / ".lagoa" / "lake"
    lake_folder.mkdir(parents=True)

    class OlderStorage(LocalStorage):
        @property
        def warehouse(self) -> str:
            return self.root.as_uri()

    older = Lake(sqlite_uri("sqlite:///.lagoa/catalog.db", root), OlderStorage(lake_folder))
    columns = [("id", "long"), ("amount", "double"), ("ts", "timestamp"), *LINEAGE, *ERROR_COLUMNS]
    schema = iceberg_schema([(name, iceberg_type(type_)) for name, type_ in columns])
    assert older.create_table("bronze.a", schema).location().startswith("file:///")

    Project.load(root).ingest()
    (root / "data" / "b.csv").write_text(MORE)
    project = Project.load(root)
    project.ingest()
    assert count(project, "select count(*) from bronze.a") == 3
    assert count(project, "select count(*) from silver.a") == 3
    bronze = project.lake.table("bronze.a")
    assert bronze is not None and bronze.location().startswith("file:///")


def test_storage_root_and_warehouse_resolve_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("LAKE_DIR", str(elsewhere))
    root = write_project(
        tmp_path / "project",
        file_source() + "storage: {root: '${env:LAKE_DIR}/lake'}\nwarehouse: '${env:LAKE_DIR}/wh.duckdb'\n",
    )
    project = Project.load(root)
    project.ingest()
    assert count(project, "select count(*) from silver.a") == 2
    assert (elsewhere / "lake" / "silver" / "a" / "metadata").is_dir()
    assert (elsewhere / "wh.duckdb").is_file()
    assert not [p for p in every_path(tmp_path) if "$" in p.name or "%" in p.name]

    monkeypatch.delenv("LAKE_DIR")
    with pytest.raises(ConfigError) as unset:
        Project.load(root)
    assert "storage.root" in str(unset.value)
    assert "environment variable `LAKE_DIR` is not set" in str(unset.value)


def test_the_projects_env_file_sets_what_the_environment_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LAKE_DIR", "LAGOA_TEST_TOKEN"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)  # absent now, and again after the test (the file sets them)
    from_file, from_shell = tmp_path / "from file", tmp_path / "from shell"
    root = write_project(tmp_path / "project", file_source() + "storage: {root: '${env:LAKE_DIR}/lake'}\n")
    (root / ".env").write_text(
        f"# the lake of this machine\nLAKE_DIR=\"{from_file}\"\nexport LAGOA_TEST_TOKEN='a#b c'\n",
        encoding="utf-8",
    )
    project = Project.load(root)
    assert Path(project.workspace.storage.location("")) == from_file / "lake"
    assert os.environ["LAGOA_TEST_TOKEN"] == "a#b c"

    monkeypatch.setenv("LAKE_DIR", str(from_shell))  # the process environment wins
    assert Path(Project.load(root).workspace.storage.location("")) == from_shell / "lake"


def test_a_missing_secret_names_the_env_file(tmp_path: Path) -> None:
    from lagoa.core.config import resolve_secrets
    from lagoa.core.errors import SecretError

    with pytest.raises(SecretError) as missing:
        resolve_secrets("${env:LAGOA_SURELY_UNSET}")
    assert "LAGOA_SURELY_UNSET=..." in str(missing.value.hint) and ".env" in str(missing.value.hint)


def test_a_file_uri_storage_root_is_decoded(tmp_path: Path) -> None:
    lake = tmp_path / "my lake"
    root = write_project(tmp_path / "project", file_source() + f"storage: {{root: '{lake.as_uri()}'}}\n")
    project = Project.load(root)
    project.ingest()
    assert count(project, "select count(*) from bronze.a") == 2
    assert (lake / "bronze" / "a" / "metadata").is_dir()
    assert not [p for p in every_path(tmp_path) if "%" in p.name]


# Names


@pytest.mark.parametrize(
    ("extra", "key", "rule"),
    [
        ('    entity: "x\\"y"\n', "sources.a.entity", "must be lower_snake_case"),
        ("    entity: /x/y\n", "sources.a.entity", "must be lower_snake_case"),
        ("    entity: ../up\n", "sources.a.entity", "must be lower_snake_case"),
        ("    entity: a.b\n", "sources.a.entity", "must be lower_snake_case"),
        ("    entity: ..\n", "sources.a.entity", "must be lower_snake_case"),
        ("    entity: a;drop\n", "sources.a.entity", "must be lower_snake_case"),
        ("    entity: Orders\n", "sources.a.entity", "must be lower_snake_case"),
        (f"    entity: {'x' * 101}\n", "sources.a.entity", "at most 100 characters"),
        ("    entity: a__quarantine\n", "sources.a.entity", "ends in `__quarantine`"),
        ("    entity: a__changes\n", "sources.a.entity", "ends in `__changes`"),
    ],
)
def test_an_entity_that_cannot_name_a_table_is_refused(
    tmp_path: Path, extra: str, key: str, rule: str
) -> None:
    message = config_error(tmp_path, file_source(extra))
    assert f"key `{key}`" in message
    assert rule in message


def test_source_model_and_postgres_table_names_follow_the_same_rules(tmp_path: Path) -> None:
    assert "ends in `__changes`" in config_error(tmp_path, file_source(name="orders__changes"))
    assert "ends in `__quarantine`" in config_error(tmp_path, file_source(name="a__quarantine"))
    postgres = "name: t\nsources:\n  p:\n    kind: postgres\n    dsn: x\n    tables: [{}]\n"
    assert "key `sources.p.tables`" in config_error(tmp_path, postgres.format("sales.a__quarantine"))
    assert "lower_snake_case" in config_error(tmp_path, postgres.format('"a b"'))
    assert "neither `table` nor `schema.table`" in config_error(tmp_path, postgres.format("a.b.c"))
    message = config_error(tmp_path, "name: t\npublish:\n  Orders-Summary: {}\n")
    assert "key `publish`" in message
    assert "model `Orders-Summary` must be lower_snake_case" in message


def test_two_sources_writing_the_same_table_are_refused(tmp_path: Path) -> None:
    two = file_source() + "  b:\n    format: csv\n    path: data/a.csv\n    entity: a\n"
    assert "sources `a` and `b` would both write `silver.a`" in config_error(tmp_path, two)
    both = file_source(name="orders") + "  p:\n    kind: postgres\n    dsn: x\n    tables: [sales.orders]\n"
    assert "sources `orders` and `p` would both write `silver.orders`" in config_error(tmp_path, both)
    twice = "name: t\nsources:\n  p:\n    kind: postgres\n    dsn: x\n    tables: [orders, sales.orders]\n"
    assert "source `p` lists two tables that would both be `bronze.orders__changes`" in config_error(
        tmp_path, twice
    )


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with postgres_server(wal_level="replica") as uri:
        with psycopg.connect(uri, autocommit=True) as con:
            con.execute('CREATE TABLE "Order Items" (id bigint PRIMARY KEY)')
        yield uri


def test_a_postgres_table_found_in_the_schema_must_have_a_safe_name(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_DSN", database)
    root = write_project(
        tmp_path, "name: t\nsources:\n  shop:\n    kind: postgres\n    dsn: '${env:SHOP_DSN}'\n"
    )
    project = Project.load(root)
    with pytest.raises(ConfigError) as refused:
        project.ingest()
    message = str(refused.value)
    assert (
        "source `shop`: table `public.Order Items`: its lake name `Order Items` must be lower_snake_case"
        in message
    )
    assert "sources.shop.tables" in message
    assert project.tables() == []


# Columns


@pytest.mark.parametrize(
    ("extra", "key", "column"),
    [
        ("    primary_key: [id]\n    ordering: updated\n", "sources.a.ordering", "updated"),
        ("    partition_by: [day(tss)]\n", "sources.a.partition_by", "tss"),
        ("    partition_by: [nope]\n", "sources.a.partition_by", "nope"),
        ("    cursor: nope\n", "sources.a.cursor", "nope"),
    ],
)
def test_a_setting_naming_a_missing_column_fails_before_anything_lands(
    tmp_path: Path, extra: str, key: str, column: str
) -> None:
    project = Project.load(write_project(tmp_path, file_source(extra)))
    with pytest.raises(ConfigError) as refused:
        project.ingest()
    message = str(refused.value)
    assert f"key `{key}`: column `{column}` is not in the data of source `a`" in message
    assert "the data has: id, amount, ts" in message
    assert project.tables() == []
    assert project.storage.list("raw") == []


def test_a_setting_changed_to_a_missing_column_after_bronze_landed_is_refused(tmp_path: Path) -> None:
    root = write_project(tmp_path, file_source("    primary_key: [id]\n    ordering: ts\n"))
    Project.load(root).ingest()
    (root / "lagoa.yml").write_text(
        (root / "lagoa.yml").read_text().replace("ordering: ts", "ordering: updated_at")
    )
    project = Project.load(root)
    with pytest.raises(
        ConfigError, match=r"key `sources\.a\.ordering`: column `updated_at` is not in the data"
    ):
        project.ingest()
    assert count(project, "select count(*) from silver.a") == 2


def test_lineage_columns_may_partition_and_order(tmp_path: Path) -> None:
    extra = "    primary_key: [id]\n    ordering: _lagoa_ingested_at\n    partition_by: [day(_lagoa_ingested_at)]\n"
    project = Project.load(write_project(tmp_path, file_source(extra)))
    project.ingest()
    assert count(project, "select count(*) from silver.a") == 2


# YAML and choices


def test_a_key_given_twice_is_an_error_naming_it_and_its_lines(tmp_path: Path) -> None:
    message = config_error(tmp_path, file_source("    path: data/b.csv\n"))
    assert "line 6" in message
    assert "key `path` is given twice (first at line 5)" in message
    flow = "name: t\nsources: {a: {format: csv, path: a.csv, format: json}}\n"
    assert "key `format` is given twice" in config_error(tmp_path, flow)
    assert "key `name` is given twice (first at line 1)" in config_error(tmp_path, "name: t\nname: u\n")


def test_yaml_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    merged = """
    name: t
    sources:
      a: &csv {format: csv, path: data/a.csv, primary_key: [id]}
      b:
        <<: *csv
        path: data/a.csv
        entity: b_copy
    """
    source = load_config(write_project(tmp_path, merged) / "lagoa.yml").sources["b"]
    assert isinstance(source, FileSource)
    assert (source.entity, source.format, source.primary_key) == ("b_copy", "csv", ["id"])


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            "sources:\n  a:\n    kind: ftp\n    path: a\n",
            "key `sources.a`: unknown source kind `ftp`; expected one of: file, http, python, postgres",
        ),
        (
            "sources:\n  a:\n    kind: htp\n    base_url: x\n",
            "unknown source kind `htp` (did you mean `http`?); expected one of:",
        ),
        (
            "sources:\n  a:\n    format: xls\n    path: a\n",
            "key `sources.a.format`: unknown format `xls`; expected one of: csv, json, jsonl, parquet",
        ),
        (
            "sources:\n  a:\n    kind: http\n    base_url: x\n    auth: {type: digest}\n",
            "key `sources.a.auth.type`: unknown type `digest`; expected one of: bearer, basic, api_key, oauth2",
        ),
        (
            "notifications:\n  - kind: sms\n",
            "key `notifications.0.kind`: unknown kind `sms`; expected one of: slack, webhook, email",
        ),
        ("sources:\n  a: 5\n", "key `sources.a`: must be a mapping of settings"),
        ("storage: somewhere\n", "key `storage`: must be a mapping of settings"),
    ],
)
def test_a_value_outside_its_choices_says_what_it_may_be(tmp_path: Path, config: str, expected: str) -> None:
    message = config_error(tmp_path, "name: t\n" + config)
    assert expected in message
    assert "Input tag" not in message and "<lambda>" not in message


# The command line


CORPUS = {
    "duplicate key": file_source("    path: data/b.csv\n"),
    "unknown kind": "name: t\nsources:\n  a:\n    kind: ftp\n    path: data/a.csv\n",
    "unknown format": "name: t\nsources:\n  a:\n    format: xls\n    path: data/a.csv\n",
    "source not a mapping": "name: t\nsources:\n  a:\n",
    "sources a list": "name: t\nsources: [a, b]\n",
    "no name": "sources: {}\n",
    "not a mapping": "- name: t\n",
    "invalid yaml": "name: t\nsources: [\n",
    "unknown key": file_source("    primary_kye: [id]\n"),
    "entity with a quote": file_source('    entity: "x\\"y"\n'),
    "entity with a slash": file_source("    entity: /x/y\n"),
    "entity with dots": file_source("    entity: ../x\n"),
    "entity with a semicolon": file_source("    entity: a;b\n"),
    "entity with a reserved suffix": file_source("    entity: b__quarantine\n"),
    "source name with a reserved suffix": file_source(name="a__changes"),
    "source name with a space": "name: t\nsources:\n  'my source':\n    format: csv\n    path: data/a.csv\n",
    "two sources, one table": file_source() + "  b:\n    format: csv\n    path: data/a.csv\n    entity: a\n",
    "storage root from an unset variable": file_source()
    + "storage: {root: '${env:LAGOA_TEST_UNSET}/lake'}\n",
    "bad cron": file_source() + "domains:\n  d: {sources: [a], schedule: 'every day'}\n",
    "unknown notifier": "name: t\nnotifications:\n  - kind: sms\n",
    "ordering on a missing column": file_source("    primary_key: [id]\n    ordering: nope\n"),
    "partition on a missing column": file_source("    partition_by: [day(nope)]\n"),
    "cursor on a missing column": file_source("    cursor: nope\n"),
}
FOUND_BY_READING = {
    "ordering on a missing column",
    "partition on a missing column",
    "cursor on a missing column",
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_a_broken_project_file_is_one_clear_error_on_the_command_line(tmp_path: Path, case: str) -> None:
    root = write_project(tmp_path / "project", CORPUS[case])
    commands = ["ingest"] if case in FOUND_BY_READING else ["doctor", "ingest"]
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "lagoa.cli", command, "--project", str(root)],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = result.stderr.splitlines()
        assert result.returncode == 2, (command, result.stderr, result.stdout)
        assert "Traceback" not in result.stderr
        assert lines and lines[0].startswith("error: "), result.stderr
        assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("  hint: ")), result.stderr
    assert not (root / ".lagoa" / "lake" / "bronze").exists()
