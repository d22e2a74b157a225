"""``lagoa dbt sources``: a dbt sources file for every bronze and silver table Lagoa knows, so
models read them as ``{{ source('silver', 'erp_orders') }}``: schema ``silver`` in the local
warehouse, and on a distributed engine the catalog's name for it (``targets.source_schema``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from lagoa.core.config import source_tables
from lagoa.lake.schema import duckdb_type, type_name
from lagoa.storage.local import replace_text
from lagoa.transform.profiles import dbt_settings
from lagoa.transform.targets import LAYERS, source_schema

if TYPE_CHECKING:
    from pathlib import Path

    from lagoa.workspace import Workspace

SOURCES_FILE = "_lagoa_sources.yml"
HEADER = "# Written by `lagoa dbt sources`: the lake's bronze and silver tables. Do not edit.\n"


def sources(workspace: Workspace) -> dict[str, Any]:
    by_layer: dict[str, list[dict[str, Any]]] = {"bronze": [], "silver": []}
    for identifier in workspace.lake.identifiers():
        layer, name = identifier.split(".", 1)
        table = workspace.lake.table(identifier)
        if layer not in by_layer or table is None:
            continue
        columns = [
            {"name": f.name, "data_type": duckdb_type(type_name(f.field_type))} for f in table.schema().fields
        ]
        by_layer[layer].append({"name": name, "columns": columns})
    # Tables the project will have after its first ingest, so dbt can parse before any data.
    for name, source in workspace.config.sources.items():
        for bronze, entity in source_tables(name, source):
            for layer, table_name in (("bronze", bronze), ("silver", entity)):
                if all(t["name"] != table_name for t in by_layer[layer]):
                    by_layer[layer].append({"name": table_name, "columns": []})
    return {
        "version": 2,
        "sources": [
            {
                "name": layer,
                "schema": source_schema(workspace.config, layer),
                "description": f"Lagoa's {layer} tables (Iceberg)",
                "tables": by_layer[layer],
            }
            for layer in LAYERS
            if by_layer[layer]
        ],
    }


def sources_path(dbt_dir: Path) -> Path:
    """Where the sources file goes: the dbt project's first model path."""
    model_paths = dbt_settings(dbt_dir).get("model-paths") or ["models"]
    return dbt_dir / str(model_paths[0]) / SOURCES_FILE


def write_sources(workspace: Workspace, dbt_dir: Path) -> Path:
    """Write the sources file into the dbt project's first model path."""
    path = sources_path(dbt_dir)
    replace_text(path, HEADER + yaml.safe_dump(sources(workspace), sort_keys=False))
    return path
