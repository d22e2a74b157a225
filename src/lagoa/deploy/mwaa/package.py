"""What an MWAA environment needs to run a Lagoa project, as the objects of its S3 bucket:

- ``dags/``: the DAG files, the ``lagoa_airflow`` module they import, and the project itself
  (``dags/lagoa_projects/<project>/``, which MWAA syncs to every component; an ``.airflowignore``
  keeps Airflow from parsing it);
- ``plugins.zip``: Lagoa's own source (``lagoa_runtime/lagoa``), which no Airflow plugin loads
  (its ``.airflowignore`` says so) but Lagoa's environment imports;
- ``requirements.txt``: only the constraint line MWAA requires, since nothing Lagoa needs is
  installed into Airflow's environment;
- ``startup.sh``: builds Lagoa's environment from the pinned libraries written into it (once per
  component, again only when they change) and exports ``LAGOA_PYTHON`` for the DAGs' tasks.

Every object's bytes depend only on what it holds (sorted zip entries with fixed times), so a
deploy with nothing changed uploads nothing and MWAA restarts nothing.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata as metadata
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lagoa.core.errors import DeployError
from lagoa.deploy.airflow.dags import SUPPORT_FILE

PROJECTS = "lagoa_projects"
"""The folder of ``dags/`` that holds the projects (one folder each)."""
RUNTIME = "lagoa_runtime"
"""The folder of ``plugins.zip`` that holds Lagoa's source."""
IGNORE_FILE = ".lagoaignore"
"""Patterns (one a line, as for fnmatch) of project files not to deploy, besides the ones below."""
NEVER_DEPLOYED = (
    ".lagoa",
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    "*.pyc",
    ".env",
    ".env.*",
    "target",
    "dbt_packages",
    "logs",
    "dags",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".DS_Store",
)
"""Never shipped: Lagoa's local state and lake, caches, dbt's build output, local secrets
(``.env``), and the DAG folder ``lagoa airflow export`` writes by default."""
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
LAGOA_PACKAGE = Path(__file__).resolve().parents[2]
"""Lagoa's own source, as installed here: what plugins.zip ships."""


@dataclass(frozen=True)
class MwaaVersion:
    airflow: str
    python: str

    @property
    def major(self) -> str:
        return self.airflow.split(".")[0]

    @property
    def has_deadlines(self) -> bool:
        """Airflow 3.0 has neither task SLAs (removed) nor Deadline Alerts (from 3.1)."""
        return self.major == "2" or not self.airflow.startswith("3.0.")

    def constraint(self) -> str:
        return (
            '--constraint "https://raw.githubusercontent.com/apache/airflow/'
            f'constraints-{self.airflow}/constraints-{self.python}.txt"'
        )


MWAA_VERSIONS = {
    version.airflow: version
    for version in (
        MwaaVersion("2.10.3", "3.11"),
        MwaaVersion("2.11.0", "3.11"),
        MwaaVersion("3.0.6", "3.12"),
        MwaaVersion("3.2.1", "3.12"),
        MwaaVersion("3.3.1", "3.12"),
    )
}
DEFAULT_MWAA_VERSION = "3.3.1"


def mwaa_version(airflow: str) -> MwaaVersion:
    if airflow not in MWAA_VERSIONS:
        raise DeployError(
            f"Lagoa does not know MWAA's Airflow {airflow}",
            hint=f"use one of {', '.join(MWAA_VERSIONS)}",
        )
    return MWAA_VERSIONS[airflow]


def project_files(root: Path) -> dict[str, bytes]:
    """The project's files to deploy, by path relative to ``root`` (POSIX)."""
    patterns = list(NEVER_DEPLOYED)
    ignore = root / IGNORE_FILE
    if ignore.is_file():
        lines = (line.strip() for line in ignore.read_text(encoding="utf-8").splitlines())
        patterns += [line.rstrip("/") for line in lines if line and not line.startswith("#")]
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if path.is_dir() or _ignored(relative, patterns):
            continue
        files[str(relative)] = path.read_bytes()
    return files


def _ignored(relative: PurePosixPath, patterns: list[str]) -> bool:
    text = str(relative)
    return any(
        fnmatch.fnmatch(text, pattern) or any(fnmatch.fnmatch(part, pattern) for part in relative.parts)
        for pattern in patterns
    )


def plugins_zip(lagoa_package: Path, distribution: str = "lagoa") -> bytes:
    """Lagoa's source as ``lagoa_runtime/lagoa/...``, with its distribution's metadata beside it
    (``importlib.metadata`` finds Lagoa's version there) and the ``.airflowignore`` that keeps
    Airflow's plugin manager from importing it."""
    found = metadata.distribution(distribution)
    info = f"{RUNTIME}/{distribution}-{found.version}.dist-info"
    entries = {".airflowignore": f"{RUNTIME}/\n".encode()}
    for name in ("METADATA", "entry_points.txt"):
        if (text := found.read_text(name)) is not None:
            entries[f"{info}/{name}"] = text.encode()
    for path in sorted(lagoa_package.rglob("*")):
        relative = path.relative_to(lagoa_package)
        if path.is_dir() or "__pycache__" in relative.parts or path.suffix == ".pyc":
            continue
        entries[f"{RUNTIME}/lagoa/{relative.as_posix()}"] = path.read_bytes()
    return _zip(entries)


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name])
    return buffer.getvalue()


def requirements_txt(version: MwaaVersion) -> bytes:
    return (
        "# Airflow's own environment on MWAA: nothing of Lagoa's is installed here (Lagoa runs in\n"
        "# the environment startup.sh builds), only the constraint line MWAA requires.\n"
        f"{version.constraint()}\n"
    ).encode()


def startup_script(requirements: list[str], lagoa_version: str) -> bytes:
    pinned = "\n".join(requirements)
    return f"""#!/bin/sh
# Lagoa's own environment on this MWAA component, written by `lagoa deploy mwaa` (Lagoa {lagoa_version}).
# Airflow pins other versions of libraries Lagoa uses, so Lagoa's tasks run in an environment of
# their own: built here, before Airflow starts, from the libraries pinned below (again only when
# they change), with Lagoa's source from plugins.zip; LAGOA_PYTHON names it to the DAGs' tasks.
set -eu
AIRFLOW_HOME="${{AIRFLOW_HOME:-/usr/local/airflow}}"
LAGOA_ENV="$AIRFLOW_HOME/lagoa-env"
WANTED="$(mktemp)"
cat > "$WANTED" <<'LAGOA_REQUIREMENTS'
{pinned}
LAGOA_REQUIREMENTS
if ! cmp -s "$WANTED" "$LAGOA_ENV/lagoa-requirements.txt"; then
    rm -rf "$LAGOA_ENV"
    python3 -m venv "$LAGOA_ENV"
    "$LAGOA_ENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$WANTED"
    cp "$WANTED" "$LAGOA_ENV/lagoa-requirements.txt"
fi
rm -f "$WANTED"
SITE="$("$LAGOA_ENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$AIRFLOW_HOME/plugins/{RUNTIME}" > "$SITE/lagoa.pth"
export LAGOA_PYTHON="$LAGOA_ENV/bin/python"
""".encode()


def bundle(
    *,
    project: str,
    dag_files: dict[str, str],
    project_root: Path,
    requirements: list[str],
    version: MwaaVersion,
    lagoa_version: str,
) -> dict[str, bytes]:
    """Every object to deploy, by key relative to the deploy's prefix: ``dag_files`` (by file
    name) with the module they import, the project's files, Lagoa, and MWAA's three files."""
    objects = {f"dags/{name}": text.encode() for name, text in dag_files.items()}
    objects[f"dags/{SUPPORT_FILE.name}"] = SUPPORT_FILE.read_bytes()
    objects["dags/.airflowignore"] = f"{PROJECTS}/\n".encode()
    for name, data in project_files(project_root).items():
        objects[f"dags/{PROJECTS}/{project}/{name}"] = data
    objects["plugins.zip"] = plugins_zip(LAGOA_PACKAGE)
    objects["requirements.txt"] = requirements_txt(version)
    objects["startup.sh"] = startup_script(requirements, lagoa_version)
    return dict(sorted(objects.items()))


SHARED = ("plugins.zip", "requirements.txt", "startup.sh", "dags/.airflowignore", f"dags/{SUPPORT_FILE.name}")
"""Objects every Lagoa project deployed to one prefix shares: never removed as stale."""
