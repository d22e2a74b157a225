"""The dbt profile Lagoa writes for local runs, so users never write one.

dbt-duckdb opens the warehouse file, whose bronze/silver/gold views read Iceberg tables with
``iceberg_scan``: the profile loads the iceberg extension, which Lagoa installs beforehand from the
``duckdb-extension-iceberg`` package (dbt-duckdb would otherwise try to download it). For a lake
on S3 it also loads httpfs and aws and declares an S3 secret of the AWS credential chain: the
profile names where the bucket is, never a key.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lagoa.core.errors import ConfigError
from lagoa.engine.connection import EXTENSIONS, S3_EXTENSIONS, installed
from lagoa.storage.local import replace_text

if TYPE_CHECKING:
    from lagoa.workspace import Workspace

TARGET = "lagoa"


def dbt_project_dir(workspace: Workspace) -> Path:
    folder = workspace.root / workspace.config.dbt.project
    if not (folder / "dbt_project.yml").is_file():
        raise ConfigError(
            f"no dbt project at {folder} (dbt_project.yml not found)",
            key="dbt.project",
            hint="set dbt.project in lagoa.yml to the folder holding dbt_project.yml",
        )
    return folder


def dbt_settings(dbt_dir: Path) -> dict[str, Any]:
    """The dbt project's dbt_project.yml, read ({} when it holds no mapping)."""
    data = yaml.safe_load((dbt_dir / "dbt_project.yml").read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def asks_profile(dbt_dir: Path) -> bool:
    """Whether dbt_project.yml names its profile (else dbt is told the one Lagoa writes)."""
    return isinstance(dbt_settings(dbt_dir).get("profile"), str)


def profile_name(dbt_dir: Path) -> str:
    """The profile the dbt project asks for (``profile:`` in dbt_project.yml), else its name."""
    data = dbt_settings(dbt_dir)
    name = data.get("profile") or data.get("name")
    if not isinstance(name, str):
        raise ConfigError("dbt_project.yml names no profile", file=str(dbt_dir / "dbt_project.yml"))
    return name


def extensions(workspace: Workspace) -> tuple[str, ...]:
    """The DuckDB extensions dbt's connection loads: S3's too for a lake on S3."""
    return (*EXTENSIONS, *(S3_EXTENSIONS if workspace.storage.s3 else ()))


def local_output(workspace: Workspace) -> dict[str, Any]:
    """The target of local runs: dbt-duckdb on the warehouse file."""
    output: dict[str, Any] = {
        "type": "duckdb",
        "path": str(workspace.warehouse.path),
        "extensions": list(extensions(workspace)),
        "threads": workspace.config.dbt.threads,
    }
    if workspace.storage.s3 is not None:
        output["secrets"] = [workspace.storage.s3.dbt_secret()]
    return output


def write_profiles(workspace: Workspace) -> Path:
    """Write ``profiles.yml`` for the project's dbt project; returns its folder."""
    dbt_dir = dbt_project_dir(workspace)
    installed(extensions(workspace))  # dbt-duckdb loads the extensions Lagoa installed
    profiles = {profile_name(dbt_dir): {"target": TARGET, "outputs": {TARGET: local_output(workspace)}}}
    folder = workspace.root / ".lagoa" / "dbt"
    folder.mkdir(parents=True, exist_ok=True)
    replace_text(folder / "profiles.yml", yaml.safe_dump(profiles, sort_keys=False))
    return folder
