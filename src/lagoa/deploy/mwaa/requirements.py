"""The libraries Lagoa needs at run time, pinned at the versions installed here: what the MWAA
startup script installs into Lagoa's own environment, so a task on MWAA runs with the same
libraries as on the laptop it was tried on."""

from __future__ import annotations

import importlib.metadata as metadata
from collections import deque

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from lagoa.core.errors import DeployError


def runtime_requirements(python_version: str, distribution: str = "lagoa") -> list[str]:
    """``name==version`` for ``distribution``'s dependencies and theirs, as installed here, with
    markers read for a Linux host running ``python_version`` (``3.12``); sorted by name."""
    environment: dict[str, str] = {key: str(value) for key, value in default_environment().items()}
    environment |= {
        "python_version": python_version,
        "python_full_version": f"{python_version}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
    }
    pinned: dict[str, str] = {}
    missing: list[str] = []
    queue: deque[tuple[str, frozenset[str]]] = deque([(distribution, frozenset())])
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        name, extras = queue.popleft()
        key = (canonicalize_name(name), extras)
        if key in seen:
            continue
        seen.add(key)
        try:
            found = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if name != distribution:
            pinned[canonicalize_name(name)] = f"{canonicalize_name(name)}=={found.version}"
        for line in found.requires or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not any(
                requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras or {""}
            ):
                continue
            queue.append((requirement.name, frozenset(requirement.extras)))
    if missing:
        raise DeployError(
            f"cannot pin Lagoa's requirements: {', '.join(sorted(set(missing)))} not installed here",
            hint="run from the environment Lagoa runs in (the one `lagoa` comes from)",
        )
    return [pinned[name] for name in sorted(pinned)]
