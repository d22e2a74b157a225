"""Every ``lagoa`` command meets bad arguments with a clean message, never a traceback.

The commands are read from the click group itself, so a new command is covered the day it is
added. Each of its arguments and options gets every value of a corpus of bad ones (empty, unknown,
without a namespace, rich markup, very long, bad durations and dates, negative numbers, path
traversal), on a real project whose tables exist; output values are shown as they are.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from lagoa.cli import main

BAD = [
    "",
    "   ",
    "nosuch",
    "orders",  # a table's name without its namespace
    "nosuch.nosuch",
    "silver.",
    ".orders",
    "[/]",
    "[edited]",
    "x" * 5000,
    "-5d",
    "2026-13-45",
    "-1",
    "../../../etc/passwd",
]
BAD_PROJECTS = ["", "nosuch", "[/]", "x" * 5000, "../../../etc/passwd"]


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


COMMANDS = dict(_commands(main))


def _takes_value(param: click.Parameter) -> bool:
    return isinstance(param, click.Option) and not param.is_flag and not param.count and param.name != "help"


def _invocations(command: click.Command) -> Iterator[list[str]]:
    """Each argument, then each option, given each bad value (other required ones given it too)."""
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    options = [p for p in command.params if _takes_value(p)]
    required = [p for p in options if p.required]
    for value in BAD:
        if isinstance(command, click.Group):
            yield [value]  # as the name of a subcommand
        if arguments:
            yield [value] * len(arguments) + [a for o in required for a in (o.opts[0], value)]
    fill = ["silver.orders"] * sum(1 for a in arguments if a.required)
    for option in options:
        values = BAD_PROJECTS if option.name in ("session", "project_path") else BAD
        for value in values:
            others = [a for o in required if o is not option for a in (o.opts[0], value)]
            yield [*fill, *others, option.opts[0], value]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The starter project, ingested, deep enough in a temporary folder that `../../../` stays in it."""
    folder = tmp_path_factory.mktemp("cli") / "a" / "b" / "c" / "project"
    runner = CliRunner()
    assert runner.invoke(main, ["init", str(folder)]).exit_code == 0
    # Without its dbt project and schedule: commands given bad arguments then build no models.
    shutil.rmtree(folder / "dbt")
    config = folder / "lagoa.yml"
    config.write_text(config.read_text().split("\n# `lagoa run daily`")[0] + "\n")
    ingested = runner.invoke(main, ["ingest", "-p", str(folder)])
    assert ingested.exit_code == 0, ingested.output
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(cwd)


def _clean(result: Result, args: list[str]) -> None:
    shown = " ".join(repr(a[:40]) for a in args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"lagoa {shown} raised {result.exception!r}\n{result.output}"
    )
    assert "Traceback" not in result.output, f"lagoa {shown}:\n{result.output}"
    if result.exit_code != 0:
        assert result.output.strip(), f"lagoa {shown} failed without a message"


SERVING = {("serve",)}
"""Commands that serve until stopped once their arguments are good: they are given a port that is
taken (the option under test, given later, wins), so that each invocation ends, cleanly."""


@pytest.fixture(scope="module")
def taken_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_bad_arguments_get_a_clean_message(
    path: tuple[str, ...], project: Path, taken_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    if path == ("init",):  # its bad names are folders it may create: not inside the shared project
        monkeypatch.chdir(tmp_path)
    before = ["--port", str(taken_port)] if path in SERVING else []
    for args in _invocations(COMMANDS[path]):
        _clean(runner.invoke(main, [*path, *before, *args], input=""), args)


def test_every_command_is_tried() -> None:
    """The corpus reaches the commands a user reaches: each has a parameter to give bad values."""
    untried = [" ".join(p) for p, c in COMMANDS.items() if not list(_invocations(c))]
    assert not untried
    assert {("query",), ("optimize",), ("expire",), ("shell",), ("cdc", "resync")} <= COMMANDS.keys()


@pytest.mark.parametrize("value", ["[/]", "[edited]", "[bold]x[/bold]"])
def test_table_output_shows_markup_as_it_is(value: str, project: Path) -> None:
    """Values, headers and titles are plain text: `[/]` does not crash, `[edited]` does not vanish."""
    result = CliRunner().invoke(main, ["query", f"select '{value}' as \"{value} h\""])
    assert result.exit_code == 0, result.output
    assert value in result.output
    assert f"{value} h" in result.output


def test_shell_skips_empty_statements_and_shows_markup(project: Path) -> None:
    result = CliRunner().invoke(
        main, ["shell"], input=";\n-- only a comment;\nselect '[/]' as \"[edited]\";\n"
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "[/]" in result.output
    assert "[edited]" in result.output


@pytest.mark.parametrize("sql", ["", "  ;  ", " -- a comment"])
def test_query_without_a_statement_is_refused(sql: str, project: Path) -> None:
    result = CliRunner().invoke(main, ["query", sql])
    assert result.exit_code == 2
    assert "holds no SQL statement" in result.output


@pytest.mark.parametrize("command", ["optimize", "expire"])
def test_a_table_without_its_namespace_is_named_in_the_hint(command: str, project: Path) -> None:
    result = CliRunner().invoke(main, [command, "orders"])
    assert result.exit_code == 1
    assert "table `orders` does not exist" in result.output
    assert "silver.orders" in result.output


def _doctor(folder: Path, env: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """`lagoa doctor --json` in ``folder``: each check's ok and detail by name."""
    result = CliRunner(env=env).invoke(main, ["doctor", "--json", "-p", str(folder)])
    assert "Traceback" not in result.output
    return {c["check"]: (c["ok"], c["detail"]) for c in json.loads(result.stdout)}


DBT_PROJECTS = {
    "not YAML": ("name: x\nprofile: [unclosed\n", "cannot be read as YAML"),
    "no profile, no name": ("config-version: 2\n", "names neither `profile:` nor `name:`"),
    "no models folder": ("name: shop\nprofile: shop\nmodel-paths: [transforms]\n", "`transforms` not found"),
}


@pytest.mark.parametrize("problem", sorted(DBT_PROJECTS))
def test_doctor_checks_the_dbt_project(tmp_path: Path, problem: str) -> None:
    folder = tmp_path / "project"
    assert CliRunner().invoke(main, ["init", str(folder)]).exit_code == 0
    assert _doctor(folder)["dbt project"][0] == "yes"  # the starter's dbt project
    shutil.rmtree(folder / "dbt")
    assert _doctor(folder)["dbt project"][0] == "yes"  # no dbt folder: no models, nothing wrong
    (folder / "dbt" / "models").mkdir(parents=True)
    content, message = DBT_PROJECTS[problem]
    (folder / "dbt" / "dbt_project.yml").write_text(content)
    ok, detail = _doctor(folder)["dbt project"]
    assert (ok, message in detail) == ("NO", True), detail
    (folder / "dbt" / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    ok, detail = _doctor(folder)["dbt project"]
    assert ok == "yes" and "profile `shop`" in detail, detail
    (folder / "dbt" / "dbt_project.yml").write_text("name: shop\n")  # Lagoa names its profile to dbt
    ok, detail = _doctor(folder)["dbt project"]
    assert ok == "yes" and "profile `shop`" in detail, detail


def test_doctor_names_unset_secrets_and_never_shows_values(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    assert CliRunner().invoke(main, ["init", str(folder)]).exit_code == 0
    config = folder / "lagoa.yml"
    config.write_text(
        config.read_text()
        + "\nnotifications:\n  - kind: webhook\n    url: https://hooks.invalid/${env:HOOK_TOKEN}\n"
        + "    headers: {X-Key: '${env:HOOK_KEY}'}\n"
    )
    checks = _doctor(folder, {"HOOK_KEY": "s3cr3t-value"})
    assert checks["secret HOOK_KEY"] == ("yes", "set")
    assert checks["secret HOOK_TOKEN"][0] == "NO"
    assert "export HOOK_TOKEN=" in checks["secret HOOK_TOKEN"][1]
    result = CliRunner(env={"HOOK_KEY": "s3cr3t-value"}).invoke(main, ["doctor", "-p", str(folder)])
    assert result.exit_code == 1
    assert "s3cr3t-value" not in result.output


def test_a_missing_secret_says_to_export_it() -> None:
    from lagoa.core.config import resolve_secrets
    from lagoa.core.errors import SecretError

    with pytest.raises(SecretError) as raised:
        resolve_secrets("postgresql://app:${env:NOT_SET_ANYWHERE}@localhost/db")
    assert raised.value.hint is not None
    assert "export NOT_SET_ANYWHERE=" in raised.value.hint
    assert "put it in your .env" not in str(raised.value)
