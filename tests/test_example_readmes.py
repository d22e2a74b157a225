"""The examples' READMEs: each command in their shell blocks works, run as written from a copy of
the example folder somewhere else, with `lagoa` on the PATH (as a user who installed Lagoa).

The medallion example's README starts its simulated API in the background and exports its token,
so its commands run as one script, in order, the way a user pastes them into one shell. The
MovieLens README's `lagoa cdc run --follow` runs until stopped: tests/test_movielens_example.py
runs its steps against the example's own Postgres."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"
SELF_CONTAINED = ["retail_lakehouse", "orders_summary"]
BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def commands(readme: Path) -> list[str]:
    """The commands of the README's shell blocks, in order, their comments left off."""
    found = []
    for block in BLOCK.findall(readme.read_text(encoding="utf-8")):
        for line in block.splitlines():
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command and not command.startswith("#"):
                found.append(command)
    return found


def test_every_example_has_a_readme_naming_no_path_of_this_repository() -> None:
    for example in sorted(p for p in EXAMPLES.iterdir() if (p / "lagoa.yml").is_file()):
        readme = example / "README.md"
        assert readme.is_file(), f"{example.name} has no README.md"
        listed = commands(readme)
        assert listed, f"{example.name}'s README shows no command"
        for command in listed:
            assert ".venv/" not in command and "../../" not in command, (
                f"`{command}` in {example.name}'s README works only inside this repository"
            )


def _copied(name: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the example elsewhere, and an environment with `lagoa` (and its Python) on the PATH."""
    folder = tmp_path / "somewhere" / name
    shutil.copytree(EXAMPLES / name, folder, ignore=shutil.ignore_patterns(".lagoa", "target", "logs"))
    bin_dir = str(Path(sys.executable).parent)
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    return folder, env


@pytest.mark.parametrize("name", SELF_CONTAINED)
def test_the_readme_commands_work_in_a_copy_of_the_example(name: str, tmp_path: Path) -> None:
    folder, env = _copied(name, tmp_path)
    listed = commands(folder / "README.md")
    assert any(c.startswith("lagoa ") for c in listed)
    for command in listed:
        done = subprocess.run(
            ["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True, timeout=600
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"`{command}` in {name}/README.md failed:\n{output[-3000:]}"
        assert "Traceback" not in output, f"`{command}`:\n{output[-3000:]}"


def test_the_medallion_readme_runs_as_one_shell_session(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # the README's API port: taken, the README cannot work here
        assert probe.connect_ex(("127.0.0.1", 8765)) != 0, "port 8765 (the README's API) is in use"
    folder, env = _copied("medallion_apis", tmp_path)
    listed = commands(folder / "README.md")
    assert listed[0].startswith("python server.py") and listed[0].endswith("&")
    script = "\n".join(
        [
            "set -euo pipefail",
            "trap 'kill $(jobs -p) 2>/dev/null' EXIT",  # the README's server, once the session ends
            *(f"echo '$ {c.replace(chr(39), '')}'\n{c}" for c in listed),
        ]
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=folder, env=env, capture_output=True, text=True, timeout=900
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"medallion_apis/README.md failed:\n{output[-4000:]}"
    assert "Traceback" not in output, output[-4000:]
    counts = re.findall(r"^\s*(\d+)\s+(\d+)\s*$", done.stdout, re.MULTILINE)
    assert counts and counts[-1][0] == counts[-1][1], done.stdout[-3000:]  # "the same two numbers"
