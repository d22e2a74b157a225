"""The project's ``.env`` file: ``NAME=value`` lines beside lagoa.yml, for the variables that
``${env:NAME}`` references name (DSNs, tokens) on a machine where nobody exports them. A variable
already in the process environment wins, so CI and a scheduler's settings are never overridden.
"""

from __future__ import annotations

import os
from pathlib import Path

from lagoa.core.errors import ConfigError

ENV_FILE = ".env"


def load_env_file(folder: Path) -> list[str]:
    """Set the variables of ``folder``'s ``.env`` that the environment does not have; the names
    set (never their values: they are secrets)."""
    path = folder / ENV_FILE
    if not path.is_file():
        return []
    from dotenv import dotenv_values

    try:
        values = dotenv_values(path, interpolate=False)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot be read ({exc.__class__.__name__})", file=str(path)) from None
    added = []
    for name, value in values.items():
        if value is not None and name not in os.environ:
            os.environ[name] = value
            added.append(name)
    return added
