"""``lagoa dbt profile --target <adapter>``: a distributed engine's target merged into a
``profiles.yml`` (by default the dbt project's own, which dbt finds by itself and which holds no
secret), beside the other profiles and targets there, so the local target keeps working.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lagoa.core.config import did_you_mean
from lagoa.core.errors import ConfigError
from lagoa.storage.local import replace_text
from lagoa.transform.profiles import TARGET, dbt_project_dir, local_output, profile_name
from lagoa.transform.sources import sources_path
from lagoa.transform.targets import ADAPTERS, LAYERS, derive, source_schema

if TYPE_CHECKING:
    from lagoa.workspace import Workspace

PROFILES_FILE = "profiles.yml"
HEADER = (
    "# dbt profiles; `lagoa dbt profile --target <adapter>` (re)writes its adapter's target and keeps\n"
    "# the rest. Secrets are env_var() references, never values.\n"
)


class _Dumper(yaml.SafeDumper):
    """YAML's safe dumper, writing templates in double quotes: ``"{{ env_var('NAME') }}"``, as
    dbt's documentation shows them, rather than with doubled single quotes."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if "{{" in value else None)


_Dumper.add_representer(str, _string)


@dataclass(frozen=True)
class ProfileWritten:
    """A target written into a profiles file."""

    path: Path
    profile: str
    target: str
    package: str
    """The dbt adapter to install where dbt runs."""
    default: bool
    """The profile's default target is this one (else the local target, or what it was)."""
    command: str
    """How to run the dbt project on the engine."""
    env: list[str]
    """Environment variables the target reads (``env_var``), to set where dbt runs."""
    notes: list[str]
    """Setup the engine needs outside dbt."""


def write_target(
    workspace: Workspace, adapter: str, *, out: Path | None = None, default: bool = False
) -> ProfileWritten:
    """Derive ``adapter``'s target from lagoa.yml and merge it into ``out`` (a folder or a
    ``profiles.yml``; default: the dbt project's), atomically; ``default`` makes it the target
    dbt uses when given no ``--target``."""
    if adapter not in ADAPTERS:
        raise ConfigError(
            f"no dbt target `{adapter}`{did_you_mean(adapter, ADAPTERS)}; "
            f"Lagoa writes profiles for {', '.join(ADAPTERS)}"
        )
    dbt_dir = dbt_project_dir(workspace)
    name = profile_name(dbt_dir)
    output = derive(workspace.config, adapter)
    path = _profiles_file(out, dbt_dir)
    profiles = _read(path)
    profile = profiles.get(name)
    if profile is None:  # a new profile: with the local target, the default unless asked otherwise
        profile = profiles[name] = {"target": TARGET, "outputs": {TARGET: local_output(workspace)}}
    if not isinstance(profile, dict) or not isinstance(profile.setdefault("outputs", {}), dict):
        raise ConfigError(f"profile `{name}` is not a mapping with `outputs:`", file=str(path))
    profile["outputs"][adapter] = output.fields
    if default:
        profile["target"] = adapter
    replace_text(path, HEADER + yaml.dump(profiles, Dumper=_Dumper, sort_keys=False))
    notes = [*output.notes, *_project_notes(workspace, adapter, dbt_dir)]
    command = ["dbt", "build", "--target", adapter, "--profiles-dir", str(path.parent)]
    if dbt_dir.resolve() != path.parent.resolve():
        command += ["--project-dir", str(dbt_dir)]
    return ProfileWritten(
        path=path,
        profile=name,
        target=adapter,
        package=ADAPTERS[adapter].package,
        default=profile.get("target") == adapter,
        command=shlex.join(command),
        env=output.env,
        notes=notes,
    )


def _profiles_file(out: Path | None, dbt_dir: Path) -> Path:
    if out is None:
        return dbt_dir / PROFILES_FILE
    if out.is_dir() or not out.suffix:
        return out / PROFILES_FILE
    if out.name != PROFILES_FILE:
        raise ConfigError(
            f"dbt reads profiles only from a file named {PROFILES_FILE}, not `{out.name}`",
            hint=f"give a folder, or a path ending in /{PROFILES_FILE}",
        )
    return out


def _read(path: Path) -> dict[str, Any]:
    """The profiles already in ``path`` (none if it does not exist)."""
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"is not valid YAML ({exc.__class__.__name__}); fix or move it", file=str(path)
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping of dbt profiles", file=str(path))
    return data


def _project_notes(workspace: Workspace, adapter: str, dbt_dir: Path) -> list[str]:
    """What the dbt project itself lacks to run on ``adapter``."""
    notes = []
    if adapter == "athena" and "table_type" not in (dbt_dir / "dbt_project.yml").read_text(encoding="utf-8"):
        notes.append(
            "dbt_project.yml sets no table_type: dbt-athena builds Hive tables unless told; add "
            "`+table_type: iceberg` under `models:` (incremental merge needs Iceberg)"
        )
    expected: dict[str, str] = {layer: source_schema(workspace.config, layer) for layer in LAYERS}
    if not _sources_current(sources_path(dbt_dir), expected):
        notes.append(
            "the dbt sources file is missing or older than these settings: `lagoa dbt sources` "
            "writes it (Lagoa does before each build); ship it with the dbt project"
        )
    return notes


def _sources_current(path: Path, expected: dict[str, str]) -> bool:
    """The sources file at ``path`` reads each layer from the schema ``expected``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        written = {source["name"]: source["schema"] for source in data.get("sources", [])}
    except (OSError, yaml.YAMLError, AttributeError, KeyError, TypeError):
        return False
    return bool(written) and all(expected.get(layer) == schema for layer, schema in written.items())
