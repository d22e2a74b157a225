"""What one task attempt did, collected where it does it: the commits it made (from the lake),
the suites it validated and the rows it read from each source.

:func:`collect` is called in the attempt's own context when it starts (by the run's observer);
the stages' results are recorded into that context as they come, and reach threads started with a
copy of it, as the commits do (see ``lagoa.lake.commits``). Outside an attempt, recording is a no-op.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lagoa.lake import commits
from lagoa.lake.commits import Commit

if TYPE_CHECKING:
    from lagoa.quality.outcome import ValidationResult


@dataclass
class Facts:
    commits: list[Commit] = field(default_factory=list)
    validations: list[ValidationResult] = field(default_factory=list)
    reads: dict[str, int] = field(default_factory=dict)
    """Rows read from each source (into its bronze table)."""


_FACTS: ContextVar[Facts | None] = ContextVar("lagoa_attempt_facts", default=None)


def collect() -> Facts:
    """New facts that receive what is done from now on in this context."""
    facts = Facts(commits.collect())
    _FACTS.set(facts)
    return facts


def validated(result: ValidationResult) -> None:
    facts = _FACTS.get()
    if facts is not None:
        facts.validations.append(result)


def read(source: str, rows: int) -> None:
    facts = _FACTS.get()
    if facts is not None:
        facts.reads[source] = facts.reads.get(source, 0) + rows
