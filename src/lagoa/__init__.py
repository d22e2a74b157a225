"""Lagoa: a local-first lakehouse. Files land raw, are typed into Iceberg bronze and
de-duplicated into silver, queryable with DuckDB, on one machine.

Public names are imported on first use so that ``lagoa --help`` does not load DuckDB or pyiceberg.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lagoa.core.config import ProjectConfig, load_config
    from lagoa.core.errors import (
        CommitConflictError,
        ConfigError,
        EngineError,
        LagoaError,
        LakeError,
        SchemaEvolutionError,
        SecretError,
        SourceError,
    )
    from lagoa.project import IngestSummary, Project, SourceSummary, load_project

__version__ = "0.1.0"

_EXPORTS = {
    "CommitConflictError": "lagoa.core.errors",
    "ConfigError": "lagoa.core.errors",
    "EngineError": "lagoa.core.errors",
    "IngestSummary": "lagoa.project",
    "LagoaError": "lagoa.core.errors",
    "LakeError": "lagoa.core.errors",
    "Project": "lagoa.project",
    "ProjectConfig": "lagoa.core.config",
    "SchemaEvolutionError": "lagoa.core.errors",
    "SecretError": "lagoa.core.errors",
    "SourceError": "lagoa.core.errors",
    "SourceSummary": "lagoa.project",
    "load_config": "lagoa.core.config",
    "load_project": "lagoa.project",
}

__all__ = [
    "CommitConflictError",
    "ConfigError",
    "EngineError",
    "IngestSummary",
    "LagoaError",
    "LakeError",
    "Project",
    "ProjectConfig",
    "SchemaEvolutionError",
    "SecretError",
    "SourceError",
    "SourceSummary",
    "__version__",
    "load_config",
    "load_project",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lagoa' has no attribute {name!r}")
