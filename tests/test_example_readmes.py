"""The examples' READMEs: each command in their shell blocks works, run as written from a copy of
the example folder somewhere else, with `lagoa` on the PATH (as a user who installed Lagoa).

The examples whose READMEs start servers of their own (an HTTP API, Postgres) are run by their
own tests (test_http_source, test_movielens_example): here, the ones a user runs with nothing else."""

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


@pytest.mark.parametrize("name", SELF_CONTAINED)
def test_the_readme_commands_work_in_a_copy_of_the_example(name: str, tmp_path: Path) -> None:
    folder = tmp_path / "somewhere" / name
    shutil.copytree(EXAMPLES / name, folder, ignore=shutil.ignore_patterns(".lagoa", "target", "logs"))
    bin_dir = str(Path(sys.executable).parent)
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    listed = commands(folder / "README.md")
    assert any(c.startswith("lagoa ") for c in listed)
    for command in listed:
        done = subprocess.run(
            ["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True, timeout=600
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"`{command}` in {name}/README.md failed:\n{output[-3000:]}"
        assert "Traceback" not in output, f"`{command}`:\n{output[-3000:]}"
