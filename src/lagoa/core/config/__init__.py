"""The project file, ``lagoa.yml``: its typed model, loading, and ``${env:NAME}`` secrets.

Lookup order for settings: the project file, then environment variables ``LAGOA_<SECTION>_<KEY>``
for the storage, catalog, state and warehouse settings (e.g. ``LAGOA_CATALOG_URI``), then flags
given on the command line. Secrets are written as ``${env:NAME}`` and resolved only when used:
the model keeps the reference, never the value, so printing a config cannot leak a secret. The
folders ``storage.root`` and ``warehouse``, no secrets, resolve theirs when the file is loaded.

One module per part: ``base`` (what every section shares), ``storage``, ``sources``, ``quality``,
``orchestration`` and ``publish`` (the sections), ``project`` (the whole file), ``loading``
(reading it) and ``secrets``.
"""

from __future__ import annotations

from lagoa.core.config.base import PARTITION_FIELD, did_you_mean, table_name
from lagoa.core.config.loading import PROJECT_FILE, load_config
from lagoa.core.config.orchestration import Notifier, PipelineConfig
from lagoa.core.config.project import ProjectConfig
from lagoa.core.config.publish import PublishSettings
from lagoa.core.config.quality import Action, QualityConfig, ResultFormat
from lagoa.core.config.secrets import (
    SECRET_PATTERN,
    Redactor,
    dsn_secrets,
    redact,
    referenced_values,
    resolve_secrets,
    secret_value,
)
from lagoa.core.config.sources import (
    CsvOptions,
    FileSource,
    HttpSource,
    Incremental,
    PostgresSource,
    PythonSource,
    Source,
    TableSource,
    source_tables,
)

__all__ = [
    "PARTITION_FIELD",
    "PROJECT_FILE",
    "SECRET_PATTERN",
    "Action",
    "CsvOptions",
    "FileSource",
    "HttpSource",
    "Incremental",
    "Notifier",
    "PipelineConfig",
    "PostgresSource",
    "ProjectConfig",
    "PublishSettings",
    "PythonSource",
    "QualityConfig",
    "Redactor",
    "ResultFormat",
    "Source",
    "TableSource",
    "did_you_mean",
    "dsn_secrets",
    "load_config",
    "redact",
    "referenced_values",
    "resolve_secrets",
    "secret_value",
    "source_tables",
    "table_name",
]
