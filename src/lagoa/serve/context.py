"""What every request handler of one server shares: the project, its readers (each keeping what
it can between requests) and the guard."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lagoa.serve.console import Console
from lagoa.serve.lineage import ColumnLineage
from lagoa.serve.overview import Overview
from lagoa.serve.quality import ResultRuns
from lagoa.serve.security import Guard
from lagoa.serve.tables import TableCache

if TYPE_CHECKING:
    from lagoa.orchestrate.project import Project

TABLE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\.[A-Za-z_][A-Za-z0-9_$]{0,254}$")
"""``namespace.table`` as Lagoa names tables: anything else is no table (and reaches no catalog)."""
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$")
TASK = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")
"""Run ids and task names as Lagoa makes them; one holding ``..`` is refused as well (see
:func:`named`), so that neither can climb out of a folder it is joined to."""


def named(pattern: re.Pattern[str], value: str) -> bool:
    """Whether all of ``value`` (a trailing newline too, which ``$`` lets through) has the form
    ``pattern`` gives names, and it holds no ``..``."""
    return pattern.fullmatch(value) is not None and ".." not in value


@dataclass
class Served:
    project: Project
    guard: Guard
    tables: TableCache = field(init=False)
    results: ResultRuns = field(init=False)
    columns: ColumnLineage = field(init=False)
    overview: Overview = field(init=False)
    console: Console = field(init=False)

    def __post_init__(self) -> None:
        self.tables = TableCache(self.project)
        self.results = ResultRuns(self.project)
        self.columns = ColumnLineage(self.project)
        self.overview = Overview(self.project)
        self.console = Console(self.project)
