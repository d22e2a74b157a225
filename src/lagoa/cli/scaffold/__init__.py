"""`lagoa init`: a small project that works on the first `lagoa ingest`."""

from __future__ import annotations

import json
import re
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

domains:
  sales:
    sources: [orders]
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
    try:
        return _write(target, name)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the starter project: {exc.strerror}",
            file=str(target),
            hint="give `lagoa init` a folder that can be created and written",
        ) from None


def _write(target: Path, name: str | None) -> list[Path]:
    if (target / "lagoa.yml").exists():
        raise ConfigError(
            "already exists", file=str(target / "lagoa.yml"), hint="choose an empty folder for `lagoa init`"
        )
    project_name = name or target.resolve().name.replace("-", "_").lower() or "lakehouse"
    files = {
        target / "lagoa.yml": PROJECT.format(name=_yaml_text(project_name)),
        target / "samples" / "orders.csv": SAMPLE,
        target / ".gitignore": GITIGNORE,
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)


def _yaml_text(text: str) -> str:
    """``text`` as a YAML string: as it is when plain, quoted when YAML would read it otherwise."""
    return text if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", text) else json.dumps(text)
