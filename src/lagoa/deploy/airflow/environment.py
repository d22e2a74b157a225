"""Apache Airflow's own environment, installed from the lock kept in this package: Airflow pins
libraries Lagoa also uses at other versions, so the two never share one environment.

Airflow's constraints file cannot be downloaded here; the lock is what ``pip freeze`` gave after
``pip install apache-airflow==<version>``, and it is installed without resolving again
(``--no-deps``), so every environment built from it is the same.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from lagoa.core.errors import DeployError

AIRFLOW_VERSION = "3.3.2"
LOCKS = Path(__file__).resolve().parent / "locks"
STAMP = ".lagoa-lock"
"""Written last into a built environment: the digest of the lock it was built from."""


def lock_file(version: str = AIRFLOW_VERSION) -> Path:
    path = LOCKS / f"airflow-{version}.txt"
    if not path.is_file():
        known = sorted(p.stem.removeprefix("airflow-") for p in LOCKS.glob("airflow-*.txt"))
        raise DeployError(f"no lock for Airflow {version}; locked: {', '.join(known)}")
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ensure_environment(folder: Path, version: str = AIRFLOW_VERSION, *, python: str | None = None) -> Path:
    """A virtual environment in ``folder`` with Airflow ``version`` as locked, built when missing
    or built from another lock; returns its ``bin`` folder."""
    lock = lock_file(version)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Two processes asking for the same environment (parallel tests, two deploys) build it once.
    with open(folder.parent / f".{folder.name}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        return _built(folder, lock, python)


def _built(folder: Path, lock: Path, python: str | None) -> Path:
    bin_dir = folder / "bin"
    stamp = folder / STAMP
    if stamp.is_file() and stamp.read_text().strip() == _digest(lock) and (bin_dir / "airflow").exists():
        return bin_dir
    if folder.exists():
        shutil.rmtree(folder)
    base = python or str(getattr(sys, "_base_executable", sys.executable))
    _run([base, "-m", "venv", str(folder)], "create the environment")
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run(
        [*pip, "--no-deps", "-r", str(lock)],
        f"install Apache Airflow {lock.stem.removeprefix('airflow-')} from {lock.name}",
    )
    stamp.write_text(_digest(lock) + "\n")
    return bin_dir


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-12:])
        raise DeployError(
            f"could not {what}:\n{tail}",
            hint="Airflow installs from the package registry (PyPI): check that it can be reached, "
            "or point pip at a mirror (PIP_INDEX_URL)",
        )
