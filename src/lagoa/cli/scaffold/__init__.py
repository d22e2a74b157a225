"""`lagoa init`: a small, complete project — a sample source, its expectation suite, a dbt
project with a staging model and a published, partitioned mart, a domain and a daily pipeline —
that `lagoa run` takes through ingest, validate, transform and publish on the first try."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lagoa.core.errors import ConfigError

PROJECT = """\
# A Lagoa project. Docs for every key: see the README of the Lagoa repository.
name: {name}

# Where the lake lives and how it is catalogued (these are the defaults).
storage:
  root: .lagoa/lake
catalog:
  uri: sqlite:///.lagoa/catalog.db
warehouse: .lagoa/warehouse.duckdb

sources:
  orders:
    format: csv
    path: samples/orders*.csv
    primary_key: [order_id]
    ordering: updated_at
    partition_by: ["day(ordered_at)"]
    columns:
      order_id: long
      amount: decimal(12,2)
      ordered_at: timestamp
      updated_at: timestamp

# quality/orders.json checks every batch of `orders` before it reaches silver.orders.

# A domain: its sources, and the dbt models tagged with its name (dbt/models/).
domains:
  sales:
    sources: [orders]

# `lagoa run daily` processes yesterday (D-1); `lagoa scheduler` runs it at 02:00 UTC.
pipelines:
  daily:
    domains: [sales]
    schedule: "0 2 * * *"
"""

SUITE = {
    "name": "orders",
    "meta": {"notes": "Checked on every batch of `orders` before it is merged into silver.orders."},
    "expectations": [
        {
            "type": "expect_table_row_count_to_be_between",
            "kwargs": {"min_value": 1},
            "meta": {"lagoa": {"on_fail": "fail"}},
        },
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "order_id"},
            "meta": {"lagoa": {"on_fail": "drop"}},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "amount", "min_value": 0, "max_value": 100000},
            "meta": {"lagoa": {"on_fail": "drop"}},
        },
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "customer"}},
    ],
}

DBT_PROJECT = """\
name: {name}
version: "1.0.0"
config-version: 2
profile: {name}   # Lagoa writes this profile (DuckDB on the warehouse) into .lagoa/dbt/profiles.yml

model-paths: ["models"]

models:
  {name}:
    staging:
      +materialized: view
    marts:
      +materialized: table
"""

STAGING = """\
{{{{ config(tags=['sales']) }}}}
-- silver.orders, typed and de-duplicated by Lagoa; its dbt source is written by Lagoa too.
select
    order_id,
    customer,
    amount,
    ordered_at,
    cast(ordered_at as date) as order_date,
    updated_at
from {{{{ source('silver', 'orders') }}}}
"""

MART = """\
{{{{ config(
    tags=['sales'],
    meta={{'lagoa': {{'publish': {{'partition_by': ['order_date']}}}}}},
) }}}}
-- Published by `lagoa run` to gold.daily_sales, an Iceberg table partitioned by order_date.
select
    order_date,
    count(*) as orders,
    count(distinct customer) as customers,
    sum(amount) as revenue
from {{{{ ref('stg_orders') }}}}
group by order_date
"""

MART_TESTS = """\
version: 2
models:
  - name: daily_sales
    description: Orders, customers and revenue per day.
    columns:
      - name: order_date
        data_tests: [not_null, unique]
"""

SAMPLE = """\
order_id,customer,amount,ordered_at,updated_at
1,ana,19.90,2024-06-01 09:12:00,2024-06-01 09:12:00
2,bruno,5.00,2024-06-01 10:40:00,2024-06-01 10:40:00
3,carla,42.10,2024-06-02 14:05:00,2024-06-02 14:05:00
3,carla,40.10,2024-06-02 14:05:00,2024-06-02 16:30:00
4,duda,not-a-number,2024-06-03 08:00:00,2024-06-03 08:00:00
"""

GITIGNORE = ".lagoa/\n.env\n"


def scaffold(target: Path, name: str | None = None) -> list[Path]:
    """Write a starter project into ``target``; refuses to overwrite an existing lagoa.yml."""
    with _writing(target):
        return _write(target, name)


@contextmanager
def _writing(target: Path) -> Iterator[None]:
    """A folder that cannot be written is a ConfigError saying so, not a traceback."""
    try:
        yield
    except OSError as exc:
        raise ConfigError(
            f"cannot write the project: {exc.strerror}",
            file=str(target),
            hint="give `lagoa init` a folder that can be created and written",
        ) from None


def _write(target: Path, name: str | None) -> list[Path]:
    if (target / "lagoa.yml").exists():
        raise ConfigError(
            "already exists", file=str(target / "lagoa.yml"), hint="choose an empty folder for `lagoa init`"
        )
    project_name = name or target.resolve().name.replace("-", "_").lower() or "lakehouse"
    dbt_name = _dbt_name(project_name)
    dbt = target / "dbt"
    files = {
        target / "lagoa.yml": PROJECT.format(name=_yaml_text(project_name)),
        target / "samples" / "orders.csv": SAMPLE,
        target / "quality" / "orders.json": json.dumps(SUITE, indent=2) + "\n",
        dbt / "dbt_project.yml": DBT_PROJECT.format(name=dbt_name),
        dbt / "models" / "staging" / "stg_orders.sql": STAGING.format(),
        dbt / "models" / "marts" / "daily_sales.sql": MART.format(),
        dbt / "models" / "marts" / "schema.yml": MART_TESTS,
        target / ".gitignore": GITIGNORE,
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)


def _dbt_name(text: str) -> str:
    """A dbt project name from the project's: letters, digits and underscores, not a digit first."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "lakehouse"
    return name if not name[0].isdigit() else f"p_{name}"


def _yaml_text(text: str) -> str:
    """``text`` as a YAML string: as it is when plain, quoted when YAML would read it otherwise."""
    return text if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", text) else json.dumps(text)


ATTACHED = """\
# A Lagoa project around the dbt project in {dbt}: its models are built in DuckDB, against
# Lagoa's warehouse, with a profile Lagoa writes (.lagoa/dbt/profiles.yml). Nothing in the dbt
# project is changed, but for the sources file Lagoa keeps there ({sources}, git-ignored).
name: {name}

dbt:
  project: {dbt}

# Files, HTTP APIs and Postgres tables that land in bronze and silver (the dbt project reads
# them as `source('silver', …)`): see the README of the Lagoa repository. None yet.
sources: {{}}

# One domain building every model, seed, snapshot and test of the dbt project. To split it,
# give each domain a selector of its own: `select: "path:models/marts"`, `tag:finance`…
domains:
  {domain}:
    sources: []
    select: "fqn:*"

pipelines:
  daily:
    domains: [{domain}]
    schedule: "0 2 * * *"
"""


def attach(target: Path, dbt_project: Path, name: str | None = None) -> list[Path]:
    """A Lagoa project in ``target`` for the existing dbt project in ``dbt_project``, which is
    not modified; what Lagoa writes inside it is added to ``target``'s .gitignore."""
    with _writing(target):
        return _attach(target, dbt_project, name)


def _attach(target: Path, dbt_project: Path, name: str | None) -> list[Path]:
    import os

    import yaml

    settings = dbt_project / "dbt_project.yml"
    if not settings.is_file():
        raise ConfigError(
            "not a dbt project (no dbt_project.yml)",
            file=str(dbt_project),
            hint="give --dbt the folder of dbt_project.yml",
        )
    if (target / "lagoa.yml").exists():
        raise ConfigError(
            "already exists",
            file=str(target / "lagoa.yml"),
            hint="choose a folder without a lagoa.yml for `lagoa init`",
        )
    data = yaml.safe_load(settings.read_text(encoding="utf-8")) or {}
    dbt_name = str(data.get("name") or "dbt") if isinstance(data, dict) else "dbt"
    paths = data.get("model-paths") if isinstance(data, dict) else None
    models = str(paths[0]) if isinstance(paths, list) and paths else "models"
    target.mkdir(parents=True, exist_ok=True)
    relative = Path(os.path.relpath(dbt_project.resolve(), target.resolve())).as_posix()
    sources = f"{models}/_lagoa_sources.yml" if relative == "." else f"{relative}/{models}/_lagoa_sources.yml"
    project_name = name or target.resolve().name.replace("-", "_").lower() or "lakehouse"
    config = target / "lagoa.yml"
    config.write_text(
        ATTACHED.format(
            name=_yaml_text(project_name),
            dbt=_yaml_text(relative),
            sources=sources,
            domain=_dbt_name(dbt_name),
        ),
        encoding="utf-8",
    )
    written = [config, *_ignore(target / ".gitignore", [".lagoa/", ".env"])]
    # Git reads no `../` pattern: a dbt project outside this folder ignores the file itself.
    if relative.startswith("../"):
        written += _ignore(dbt_project / ".gitignore", [f"{models}/_lagoa_sources.yml"])
    else:
        written += _ignore(target / ".gitignore", [sources])
    return list(dict.fromkeys(written))


def _ignore(ignore: Path, patterns: list[str]) -> list[Path]:
    """Add the ``patterns`` a .gitignore lacks; the file, when it was written."""
    before = ignore.read_text(encoding="utf-8") if ignore.is_file() else ""
    added = [line for line in patterns if line not in before.splitlines()]
    if not added:
        return []
    separator = "\n" if before and not before.endswith("\n") else ""
    heading = "" if "# written by Lagoa" in before else "# written by Lagoa\n"
    lines = "\n".join(added)
    ignore.write_text(f"{before}{separator}{heading}{lines}\n", encoding="utf-8")
    return [ignore]
