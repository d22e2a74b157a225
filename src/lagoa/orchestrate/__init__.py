"""The embedded orchestrator: task graphs per domain, a parallel executor, events."""
