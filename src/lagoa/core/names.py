"""The names Lagoa gives its own things: the tables it adds beside the user's, the columns it adds
to tables, and the keys it writes in an Iceberg snapshot's summary (what a commit carries besides
its rows)."""

from __future__ import annotations

# Tables.
QUARANTINE_SUFFIX = "__quarantine"
"""``silver.<entity>__quarantine``: an entity's rows that did not parse or failed a ``drop`` check."""
CHANGES_SUFFIX = "__changes"
"""``bronze.<table>__changes``: a Postgres table's change log."""
RESERVED_SUFFIXES = (QUARANTINE_SUFFIX, CHANGES_SUFFIX)
"""No source, entity or model may end in one: its table would be taken for one of Lagoa's."""

# Columns, with their Lagoa type names.
LINEAGE = (
    ("_lagoa_batch_id", "string"),
    ("_lagoa_ingested_at", "timestamptz"),
    ("_lagoa_source", "string"),
)
"""Added to every bronze row: the batch that landed it, when, and from which file, URL or LSN."""
ERROR_COLUMNS = (("_lagoa_error", "string"), ("_lagoa_raw", "string"))
"""A bronze row that did not parse: why, and its text as it came."""
SYSTEM_COLUMNS = {name for name, _ in LINEAGE + ERROR_COLUMNS}
QUARANTINE_COLUMNS = (
    ("_lagoa_reason", "string"),
    ("_lagoa_raw", "string"),
    ("_lagoa_batch_id", "string"),
    ("_lagoa_source", "string"),
    ("_lagoa_ingested_at", "timestamptz"),
    ("_lagoa_run_id", "string"),
)
"""A quarantined row's columns besides its own: the reason, its raw text, and where it came from."""

# Snapshot summary keys.
RUN_ID = "lagoa.run-id"
"""The run that made the commit."""
BATCHES = "lagoa.batches"
"""The ledger of batches a table holds, carried from snapshot to snapshot."""
CURSOR = "lagoa.cursor"
"""An incremental source's watermark, committed with the rows read up to it."""
SOURCE_FILES = "lagoa.source-files"
BATCH_ORDER = "lagoa.batch-order"
"""A commit's batches, oldest first (a file source's: by modification time, then path), so that
silver gives a tie between two batches of one ingest to the newer."""
RELATION = "lagoa.relation"
"""A Postgres table's OID, to notice a table dropped and created again."""
LSN = "lagoa.lsn"
"""The WAL position a Postgres table's committed rows are consistent with."""
