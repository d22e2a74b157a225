"""Whether a run's transform has anything to do: dbt is not started for a domain whose models
were built and published from exactly the inputs they would be built from now.

The inputs are everything a model may read or be shaped by: every table of the lake but gold
(each one's current metadata file: a commit makes a new one), the dbt project's files and the
project file (by content), and the data interval the models are given; and the warehouse file
the models live in must be the one they were built into. Starting dbt costs seconds; these cost milliseconds (one catalog query for a
SQL catalog). A domain is recorded once its publish step succeeds, so a run that failed after
building records nothing and the next run builds again.

The record lives beside the warehouse (``<warehouse>.built.json``): it speaks of the models in
that file, on this machine. Building a domain forgets the others (they may read its models), so
they build again the next time.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from lagoa.core.config import PROJECT_FILE
from lagoa.core.time import Interval

if TYPE_CHECKING:
    from lagoa.workspace import Workspace

SKIPPED_FOLDERS = {"target", "logs", "dbt_packages", "dbt_modules", ".lagoa"}
"""dbt's own output and downloads: not inputs of a model."""


def inputs(workspace: Workspace, interval: Interval | None) -> str:
    """A digest of everything the project's models are built from, as it is now."""
    from lagoa.transform.profiles import dbt_project_dir
    from lagoa.transform.sources import SOURCES_FILE

    digest = hashlib.sha256()
    for identifier, location in sorted(workspace.lake.metadata_locations().items()):
        if not identifier.startswith("gold."):  # gold is what publishing writes, not a model's input
            digest.update(f"table {identifier} {location}\n".encode())
    dbt_dir = dbt_project_dir(workspace)
    for path in _files(dbt_dir):
        if path.name == SOURCES_FILE:  # Lagoa writes it from the lake's tables, counted above
            continue
        digest.update(f"file {path.relative_to(dbt_dir)} ".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    project_file = workspace.root / PROJECT_FILE
    if project_file.is_file():
        digest.update(hashlib.sha256(project_file.read_bytes()).digest())
    if interval is not None:
        digest.update(f"interval {interval.start.isoformat()} {interval.end.isoformat()}\n".encode())
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for directory, folders, files in os.walk(folder):
        folders[:] = sorted(f for f in folders if f not in SKIPPED_FOLDERS and not f.startswith("."))
        found.extend(Path(directory) / name for name in sorted(files) if not name.startswith("."))
    return found


class Built:
    """The inputs each domain's models were last built and published from, and the run that did.
    Read and written whole, atomically; two processes writing at once may lose a record, which
    costs a rebuild, never a wrong skip."""

    def __init__(self, workspace: Workspace) -> None:
        self.warehouse = Path(workspace.warehouse.path)
        self.path = Path(f"{self.warehouse}.built.json")

    def _identity(self) -> str:
        """The warehouse file, as the models were built into it: another file (deleted, made
        again) holds none of them."""
        try:
            stat = self.warehouse.stat()
        except OSError:
            return "none"
        return f"{stat.st_dev}:{stat.st_ino}"

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, dict)}

    def _write(self, data: dict[str, dict[str, str]]) -> None:
        temporary = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex}.tmp")
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        temporary.replace(self.path)  # atomic: a reader sees the old record or the new one

    def unchanged(self, domain: str, digest: str) -> bool:
        """Whether ``domain`` was built and published from inputs with this digest."""
        record = self._read().get(domain, {})
        return record.get("inputs") == digest and record.get("warehouse") == self._identity()

    def building(self, domain: str, run_id: str) -> None:
        """``domain`` builds in ``run_id``: what the domains of earlier runs built, perhaps from its
        models, is forgotten (those built in this run already saw them)."""
        with _LOCK:
            kept = {d: r for d, r in self._read().items() if r.get("run") == run_id and d != domain}
            self._write(kept)

    def published(self, domain: str, digest: str, run_id: str) -> None:
        """``domain`` was built from ``digest`` in ``run_id``, and its models are published."""
        with _LOCK:
            record = {"inputs": digest, "run": run_id, "warehouse": self._identity()}
            self._write({**self._read(), domain: record})


_LOCK = threading.Lock()
