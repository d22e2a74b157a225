"""Run history, task attempts and leases: SQLite by default, Postgres when the state URI says so."""

from lagoa.state.records import AttemptRecord, LeaseRecord, RunRecord
from lagoa.state.store import Lease, StateStore

__all__ = ["AttemptRecord", "Lease", "LeaseRecord", "RunRecord", "StateStore"]
