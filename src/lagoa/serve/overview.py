"""The overview: every pipeline and domain's status (what ``lagoa status`` shows), the durations of
recent runs, and the rows landed per day.

The status reads the run history, the quality results, the quarantine tables and the CDC slots;
it is kept for a few seconds so that a page reloaded by several people reads them once.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lagoa.orchestrate.project import Project

STATUS_SECONDS = 5.0
"""How long a computed status is shown before it is computed again."""
DURATION_RUNS = 200
LANDED_DAYS = 30


class Overview:
    def __init__(self, project: Project) -> None:
        self.project = project
        self._kept: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def status(self) -> dict[str, Any]:
        with self._lock:
            if self._kept is None or time.monotonic() - self._kept[0] > STATUS_SECONDS:
                status = self.project.status()
                self._kept = (
                    time.monotonic(),
                    {**status.as_dict(), "ok": status.ok, "problems": status.problems},
                )
            return self._kept[1]

    def __call__(self) -> dict[str, Any]:
        store = self.project.state
        runs = [r for r in store.runs(limit=DURATION_RUNS) if r.ended_at is not None]
        durations = [
            {
                "run_id": r.run_id,
                "pipeline": r.pipeline,
                "state": r.state,
                "started_at": r.started_at.astimezone(UTC).isoformat(),
                "seconds": round((r.ended_at - r.started_at).total_seconds(), 3),
            }
            for r in reversed(runs)
            if r.ended_at is not None
        ]
        since = datetime.now(UTC) - timedelta(days=LANDED_DAYS)
        landed = [{"day": d, "pipeline": p, "rows": n} for d, p, n in store.rows_per_day(since)]
        return {"status": self.status(), "durations": durations, "landed": landed}
