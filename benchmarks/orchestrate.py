"""Orchestrator overhead per task: 200 no-op tasks in chains and fan-outs, run by the executor
with every attempt recorded in a SQLite state database (as ``lagoa run`` does). Overhead per task
is the wall time minus the tasks' own work (none) over the task count.

    python benchmarks/orchestrate.py [--tasks 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lagoa.orchestrate.executor import EventStream, execute, record_to
from lagoa.orchestrate.graph import Graph, Task
from lagoa.state import StateStore


def graph(tasks: int) -> Graph:
    """Chains of 10 tasks; every chain's head fans out from one root."""
    built = Graph()
    built.add(Task("root", "ingest", "d"))
    for i in range(1, tasks):
        chain, position = divmod(i - 1, 10)
        upstream = "root" if position == 0 else f"t{chain}_{position - 1}"
        built.add(Task(f"t{chain}_{position}", "ingest", "d", (upstream,)))
    return built


def once(tasks: int, folder: Path, run: int) -> float:
    store = StateStore.open(f"sqlite:///{folder / 'state.db'}", folder)
    events = EventStream()
    events.subscribe(record_to(store))
    run_id = f"run-{run}"
    store.start_run(run_id, "bench")
    started = time.perf_counter()
    outcomes = execute(graph(tasks), lambda task: None, run_id=run_id, events=events, max_parallel=2)
    seconds = time.perf_counter() - started
    assert all(o.state == "succeeded" for o in outcomes.values())
    store.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        once(args.tasks, folder, 0)  # warm-up
        times = [once(args.tasks, folder, i + 1) for i in range(args.repeat)]
    per_task = [t / args.tasks * 1000 for t in times]
    print(
        f"{args.tasks} no-op tasks, {args.repeat} runs: overhead per task {statistics.median(per_task):.1f} ms "
        f"(min {min(per_task):.1f}, max {max(per_task):.1f}; target ≤ 50 ms)",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
