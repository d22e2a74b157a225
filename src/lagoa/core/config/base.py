"""What every section of the project file shares: the ``Model`` base class, column type and
partition field names, and the checks and hints built on them.
"""

from __future__ import annotations

import difflib
import os
import re
from typing import Any

from croniter import croniter
from pydantic import BaseModel, ConfigDict

from lagoa.core.config.secrets import SECRET_PATTERN
from lagoa.core.names import RESERVED_SUFFIXES

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_NAME_LENGTH = 100
"""Longest table name: each is a folder name too, and file systems stop at 255 bytes."""
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

    # Validators are built at first use, not at import: only the models a project uses pay.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def check_cron(schedule: str) -> str:
    """``schedule`` when croniter reads it, else a ValueError saying how to write one."""
    if not croniter.is_valid(schedule):
        raise ValueError(
            f"`{schedule}` is not a cron expression; write five fields, e.g. `0 2 * * *` (02:00 daily) "
            "or `5 * * * *` (hourly), or @daily / @hourly"
        )
    return schedule


def table_name(name: str, what: str) -> str:
    """``name`` when it can name a lake table (``what`` says which setting gave it), else a
    ValueError saying the rule: the name becomes a folder, an Iceberg identifier and a SQL view."""
    if not IDENTIFIER.match(name) or len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{what} `{name}` must be lower_snake_case: a letter or _, then letters, digits or _, "
            f"at most {MAX_NAME_LENGTH} characters (it names a table)"
        )
    for suffix in RESERVED_SUFFIXES:
        if name.endswith(suffix):
            raise ValueError(
                f"{what} `{name}` ends in `{suffix}`, which Lagoa gives its own tables; choose another name"
            )
    return name


def environment_value(value: str) -> str:
    """``value`` with each ``${env:NAME}`` replaced by the variable's value: for settings that are
    no secret (folders), resolved when the file is loaded."""

    def lookup(match: re.Match[str]) -> str:
        if match.group(1) != "env":
            raise ValueError(f"`{match.group(0)}` is for secrets; this setting takes ${{env:NAME}}")
        name = match.group(2)
        if name not in os.environ:
            raise ValueError(
                f"environment variable `{name}` is not set; export {name}=… or change the setting"
            )
        return os.environ[name]

    return SECRET_PATTERN.sub(lookup, value)


def did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""
