"""The ``lagoa`` command line: parse, call the library once, print through an :class:`Output`.

:mod:`.app` holds the root group and what commands share; :mod:`.output` prints results for
people or as JSON; each command module registers its commands on the group when imported here:
:mod:`.lake` (init, ingest, tables, query, doctor, optimize, expire), :mod:`.transform` (dbt,
transform, publish, docs), :mod:`.quality` (validate, quality), :mod:`.runs` (graph, run, runs,
backfill, scheduler), :mod:`.cdc`, :mod:`.airflow` (export, and what the DAGs run), :mod:`.deploy`
(MWAA), :mod:`.lineage`, :mod:`.status`, :mod:`.serve` and :mod:`.shell`. Nothing heavy is imported until a command
runs, so ``lagoa --help`` and ``lagoa init`` stay fast.
"""

from lagoa.cli import airflow, cdc, deploy, lake, lineage, quality, runs, serve, shell, status, transform
from lagoa.cli.app import main

__all__ = [
    "airflow",
    "cdc",
    "deploy",
    "lake",
    "lineage",
    "main",
    "quality",
    "runs",
    "serve",
    "shell",
    "status",
    "transform",
]
