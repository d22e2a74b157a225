"""What every section of the project file shares: the ``Model`` base class, column type and
partition field names, and the checks and hints built on them.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from croniter import croniter
from pydantic import BaseModel, ConfigDict

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
TYPE_NAMES = (
    "boolean",
    "int",
    "long",
    "float",
    "double",
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "string",
)
DECIMAL_TYPE = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
PARTITION_FIELD = re.compile(r"^(?:(identity|year|month|day|hour)\((\w+)\)|(\w+))$")


def partition_fields(value: list[str]) -> list[str]:
    """Check partition fields (``column``, ``day(column)``…) and strip them."""
    for field in value:
        if not PARTITION_FIELD.match(field.strip()):
            raise ValueError(
                f"partition field `{field}` is not understood; write `column` or day(column), "
                "month(column), year(column), hour(column)"
            )
    return [field.strip() for field in value]


class Model(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_cron(schedule: str) -> str:
    """``schedule`` when croniter reads it, else a ValueError saying how to write one."""
    if not croniter.is_valid(schedule):
        raise ValueError(
            f"`{schedule}` is not a cron expression; write five fields, e.g. `0 2 * * *` (02:00 daily) "
            "or `5 * * * *` (hourly), or @daily / @hourly"
        )
    return schedule


def did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""
