"""What a lake knows of one CDC source's slot, kept in the lake's storage (``cdc/<source>.json``):
the slot and publication it uses, how far it moved the slot, and the dropped columns it has
reported. A slot found further on than this lake moved it was read by another consumer (another
lake given the same slot): the changes it took never reach this lake, so replication stops."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lagoa.core.config import PostgresSource
from lagoa.core.names import LSN, RELATION
from lagoa.lake.identity import lake_id

if TYPE_CHECKING:
    from lagoa.lake.catalog import Lake
    from lagoa.storage import Storage
    from lagoa.workspace import Workspace


@dataclass
class Ledger:
    storage: Storage
    key: str
    slot: str
    publication: str
    confirmed: int | None = None
    """The furthest position this lake moved the slot to, written before it moves it (so a crash
    leaves the slot behind it, never past it). None until this lake creates or first reads it."""
    dropped: dict[str, list[str]] = field(default_factory=dict)
    """Per table, the columns dropped at the source that were reported already."""
    columns: dict[str, list[str]] = field(default_factory=dict)
    """Per table, the source's columns whose value silver holds for every row: copied, or added
    at the source with no value for the rows it had (a column added with a default is not, until
    the table is copied again)."""
    inherited: bool = False
    """The lake mirrored the source before it kept a ledger: its slot is taken as it is."""
    applied: int | None = None
    """When ``slot`` names another slot than the one recorded: where the lake moved that one to,
    having applied every change before it (not saved)."""

    def save(self) -> None:
        record = {
            "slot": self.slot,
            "publication": self.publication,
            "confirmed": self.confirmed,
            "dropped": self.dropped,
            "columns": self.columns,
        }
        self.storage.put_bytes(self.key, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


def open_ledger(workspace: Workspace, source: str, config: PostgresSource) -> Ledger:
    """The source's ledger. Its names: ``slot`` and ``publication`` when set, else those recorded
    (a lake keeps the slot it set up), else ``lagoa_<source>`` for a lake that mirrored the
    source before lakes kept ledgers, else ``lagoa_<source>_<lake id>``, unique to this lake."""
    storage, key = workspace.storage, f"cdc/{source}.json"
    stored = storage.read_bytes(key)
    if stored is not None:
        recorded = json.loads(stored)
        ledger = Ledger(
            storage,
            key,
            recorded["slot"],
            recorded["publication"],
            recorded["confirmed"],
            recorded["dropped"],
            recorded["columns"],
        )
    elif _mirrored_before_ledgers(workspace.lake, config):
        ledger = Ledger(storage, key, f"lagoa_{source}", f"lagoa_{source}", inherited=True)
    else:
        own = f"lagoa_{source}_{lake_id(workspace.storage)[:8]}"
        ledger = Ledger(storage, key, own, own)
    if config.slot is not None and config.slot != ledger.slot:
        ledger.slot, ledger.confirmed, ledger.applied = config.slot, None, ledger.confirmed
    ledger.publication = config.publication or ledger.publication
    return ledger


def _mirrored_before_ledgers(lake: Lake, config: PostgresSource) -> bool:
    """True when a mirror of the source's tables (any Postgres table, when none are listed)
    holds a copy: the lake set up the slot under the old default name."""
    names = [f"silver.{t}" for t in config.entities()] or [
        i for i in lake.identifiers() if i.startswith("silver.")
    ]
    return any(lake.newest(n, LSN) is not None and lake.newest(n, RELATION) is not None for n in names)
