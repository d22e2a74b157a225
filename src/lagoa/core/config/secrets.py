"""``${env:NAME}`` secrets: resolved from the environment only when used, and redacted from output."""

from __future__ import annotations

import os
import re

from lagoa.core.errors import SecretError

SECRET_PATTERN = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_secrets(value: str) -> str:
    """Replace every ``${env:NAME}`` in ``value`` with the environment's value, at use time."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise SecretError(
                f"secret `{name}` is not set",
                hint=f"`export {name}=...` in the shell that runs lagoa (Lagoa reads no .env file)",
            )
        return os.environ[name]

    return SECRET_PATTERN.sub(lookup, value)


def redact(text: str, values: list[str]) -> str:
    """Remove secret values from text bound for output."""
    for value in values:
        if value:
            text = text.replace(value, "***")
    return text
