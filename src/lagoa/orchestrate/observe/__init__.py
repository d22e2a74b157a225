"""Observability of runs: metrics, StatsD and lineage, each a subscriber of a run's events."""
