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
        CompileError,
        ConditionError,
        ConfigError,
        DeployError,
        EngineError,
        LagoaError,
        LakeError,
        LeaseError,
        QualityError,
        QueryFailedError,
        RefusedError,
        SchemaEvolutionError,
        SecretError,
        SlotBusyError,
        SourceError,
        StateError,
        SuiteError,
        TaskTimeoutError,
        TransformError,
    )
    from lagoa.orchestrate.ingest import IngestSummary, SourceSummary
    from lagoa.orchestrate.project import Project, load_project

__version__ = "0.1.0"

_EXPORTS = {
    "CommitConflictError": "lagoa.core.errors",
    "CompileError": "lagoa.core.errors",
    "ConditionError": "lagoa.core.errors",
    "ConfigError": "lagoa.core.errors",
    "DeployError": "lagoa.core.errors",
    "EngineError": "lagoa.core.errors",
    "IngestSummary": "lagoa.orchestrate.ingest",
    "LagoaError": "lagoa.core.errors",
    "LakeError": "lagoa.core.errors",
    "LeaseError": "lagoa.core.errors",
    "QueryFailedError": "lagoa.core.errors",
    "RefusedError": "lagoa.core.errors",
    "Project": "lagoa.orchestrate.project",
    "ProjectConfig": "lagoa.core.config",
    "QualityError": "lagoa.core.errors",
    "SchemaEvolutionError": "lagoa.core.errors",
    "SecretError": "lagoa.core.errors",
    "SlotBusyError": "lagoa.core.errors",
    "SourceError": "lagoa.core.errors",
    "SourceSummary": "lagoa.orchestrate.ingest",
    "StateError": "lagoa.core.errors",
    "SuiteError": "lagoa.core.errors",
    "TaskTimeoutError": "lagoa.core.errors",
    "TransformError": "lagoa.core.errors",
    "load_config": "lagoa.core.config",
    "load_project": "lagoa.orchestrate.project",
}

__all__ = [
    "CommitConflictError",
    "CompileError",
    "ConditionError",
    "ConfigError",
    "DeployError",
    "EngineError",
    "IngestSummary",
    "LagoaError",
    "LakeError",
    "LeaseError",
    "Project",
    "ProjectConfig",
    "QualityError",
    "QueryFailedError",
    "RefusedError",
    "SchemaEvolutionError",
    "SecretError",
    "SlotBusyError",
    "SourceError",
    "SourceSummary",
    "StateError",
    "SuiteError",
    "TaskTimeoutError",
    "TransformError",
    "__version__",
    "load_config",
    "load_project",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lagoa' has no attribute {name!r}")
