"""Content hashes remembered by file identity, so that a run reads only the files that changed.

A file whose identity (size, modification and change times, inode and device) is the one it had
when it was hashed holds the same bytes: its hash is not computed again. The change time cannot
be set back by tools that restore a modification time (``touch -d``, ``cp -p``, ``rsync -t``), so
rewriting a file in place always shows. A file modified within :data:`RACY_NS` of its hashing is
not remembered (as git does with its index): a coarse file-system clock could give a second write
in the same tick the same identity. The same holds for its change time.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

RACY_NS = 2_000_000_000
"""A file modified this close to its hashing (2 s, above the coarsest common clock) is hashed again."""


def _identity(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev]


class FileHashes:
    """The hashes a source's files had, kept in one JSON file (``path`` → identity and hash).
    :meth:`save` keeps only the files looked up since loading, so removed files drop out."""

    def __init__(self, store: Path, compute: Callable[[Path], str], *, racy_ns: int = RACY_NS) -> None:
        self.store = store
        self.compute = compute
        self.racy_ns = racy_ns
        self.hashed = 0
        """Files whose bytes were read by this instance (the rest came from the store)."""
        try:
            loaded = json.loads(store.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or unreadable: every file is hashed
            loaded = {}
        self._known: dict[str, list[object]] = loaded if isinstance(loaded, dict) else {}
        self._seen: dict[str, list[object]] = {}

    def hash(self, path: Path, stat: os.stat_result) -> str:
        """The content hash of ``path``, whose ``stat`` was just taken."""
        key = str(path.resolve())
        identity = _identity(stat)
        known = self._known.get(key)
        if known is not None and known[:-1] == identity and isinstance(known[-1], str):
            self._seen[key] = known
            return known[-1]
        started = time.time_ns()
        digest = self.compute(path)
        self.hashed += 1
        settled = started - max(stat.st_mtime_ns, stat.st_ctime_ns) > self.racy_ns
        if settled and _identity(path.stat()) == identity:
            self._seen[key] = [*identity, digest]
        return digest

    def save(self) -> None:
        """Write what was looked up, atomically; a store that cannot be written is left alone
        (the next run hashes again)."""
        if self._seen == self._known:
            return
        staged = self.store.with_name(f".{self.store.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.store.parent.mkdir(parents=True, exist_ok=True)
            staged.write_text(json.dumps(self._seen), encoding="utf-8")
            os.replace(staged, self.store)
        except OSError:
            staged.unlink(missing_ok=True)
