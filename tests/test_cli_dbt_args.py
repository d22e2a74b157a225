"""``lagoa dbt``: a ``-p``/``--project`` written after dbt's command is Lagoa's option."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from lagoa.cli import main
from lagoa.cli.transform import _lifted_project


@pytest.mark.parametrize(
    ("args", "kept", "path"),
    [
        (("build", "-p", "lake", "--select", "tag:x"), ("build", "--select", "tag:x"), "lake"),
        (("build", "--project", "lake"), ("build",), "lake"),
        (("build", "--project=lake"), ("build",), "lake"),
        (("run", "-plake"), ("run",), "lake"),
        (("build", "--select", "tag:x"), ("build", "--select", "tag:x"), None),
        (
            ("build", "--profile", "p", "--profiles-dir", "d"),
            ("build", "--profile", "p", "--profiles-dir", "d"),
            None,
        ),
    ],
)
def test_a_project_option_after_the_dbt_command_is_lifted_out(
    args: tuple[str, ...], kept: tuple[str, ...], path: str | None
) -> None:
    assert _lifted_project(args) == (kept, path)


def test_a_project_option_without_a_value_says_what_it_needs() -> None:
    with pytest.raises(click.UsageError, match="needs a value"):
        _lifted_project(("build", "-p"))


def test_a_project_given_before_and_after_the_dbt_command_is_refused() -> None:
    result = CliRunner().invoke(main, ["dbt", "-p", "one", "build", "-p", "two"])
    assert result.exit_code == 2, result.output
    assert "--project is given twice: `one` and `two`" in result.output
