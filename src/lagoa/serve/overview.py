"""The overview: every pipeline and domain's status (what ``lagoa status`` shows), the durations of
recent runs, and the rows landed per day.

The status reads the run history, the quality results, the quarantine tables and the CDC slots;
it is kept for a few seconds and then computed again off the requests' path, so that a page
reloaded by several people reads them once and no request waits for it but the first.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lagoa.orchestrate.project import Project

log = logging.getLogger("lagoa.serve")

STATUS_SECONDS = 5.0
"""How long a computed status is shown before it is computed again."""
DURATION_RUNS = 200
LANDED_DAYS = 30


class Overview:
    def __init__(self, project: Project) -> None:
        self.project = project
        self._kept: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._first = threading.Lock()
        self._refreshing = False

    def status(self) -> dict[str, Any]:
        """The latest status; once older than STATUS_SECONDS it is computed again in the
        background while requests get the one kept (only the first request waits for one)."""
        with self._lock:
            kept = self._kept
            stale = kept is None or time.monotonic() - kept[0] > STATUS_SECONDS
            start = stale and kept is not None and not self._refreshing
            if start:
                self._refreshing = True
        if kept is None:
            with self._first:  # one computation, however many first requests wait for it
                if self._kept is None:
                    self._store(self._compute())
                assert self._kept is not None
                return self._kept[1]
        if start:
            threading.Thread(target=self._refresh, name="lagoa-serve-status", daemon=True).start()
        return kept[1]

    def _compute(self) -> dict[str, Any]:
        status = self.project.status()
        return {**status.as_dict(), "ok": status.ok, "problems": status.problems}

    def _store(self, value: dict[str, Any]) -> None:
        with self._lock:
            self._kept = (time.monotonic(), value)

    def _refresh(self) -> None:
        try:
            self._store(self._compute())
        except Exception:  # the next stale request tries again; the kept status stays shown
            log.warning("the status could not be computed again", exc_info=True)
        finally:
            with self._lock:
                self._refreshing = False

    def __call__(self) -> dict[str, Any]:
        store = self.project.state
        runs = [r for r in store.runs(limit=DURATION_RUNS) if r.ended_at is not None]
        durations = [
            {
                "run_id": r.run_id,
                "pipeline": r.pipeline,
                "state": r.state,
                "started_at": r.started_at.astimezone(UTC).isoformat(),
                "seconds": round(r.seconds or 0.0, 3),
            }
            for r in reversed(runs)
            if r.ended_at is not None
        ]
        since = datetime.now(UTC) - timedelta(days=LANDED_DAYS)
        landed = [{"day": d, "pipeline": p, "rows": n} for d, p, n in store.rows_per_day(since)]
        return {"status": self.status(), "durations": durations, "landed": landed}
