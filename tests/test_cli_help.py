"""Every ``lagoa`` command and group ends its ``--help`` with an "Examples:" block, and each
example is a command that exists, with options it has and arguments it parses.

The commands are read from the click group itself, so a new command without examples fails
here the day it is added. An example of a command names that command (``lagoa cdc run …`` for
``lagoa cdc run``); a group's may name any of its subcommands (the top-level group's, any
command). Each ``--option`` of an example must be one of the command's own, and the example's
arguments and options must parse as the command parses them (nothing runs).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from lagoa.cli import main
from lagoa.cli.transform import dbt_profile

CommandPath = tuple[str, ...]


def _walk(command: click.Command, path: CommandPath = ()) -> Iterator[tuple[CommandPath, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, (*path, name))


COMMANDS = dict(_walk(main))

DEFAULT_SUBCOMMAND: dict[CommandPath, str] = {("run",): "start"}
"""Groups that run a subcommand when none is named: `lagoa run daily` is `lagoa run start daily`."""

PASS_THROUGH: set[CommandPath] = {("dbt",)}
"""Commands whose arguments and options go to another program (dbt): not checked against ours."""

NESTED: dict[tuple[CommandPath, str], click.Command] = {(("dbt",), "profile"): dbt_profile}
"""Commands a pass-through command runs itself, outside the click tree (`lagoa dbt profile`)."""


def _id(path: CommandPath) -> str:
    return " ".join(path) or "lagoa"


def _examples(name: str, output: str) -> list[str]:
    """The example commands after the last "Examples:" line, continuation lines (`\\`) joined."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Examples:"]
    assert starts, f"`{name} --help` has no 'Examples:' block:\n{output}"
    block: list[str] = []
    for line in lines[starts[-1] + 1 :]:
        if not line.strip():
            break
        assert line.startswith("  "), f"`{name} --help`: example not indented: {line!r}"
        block.append(line.strip())
    examples: list[str] = []
    pending = ""
    for line in block:
        text = f"{pending} {line}" if pending else line
        if text.endswith("\\"):
            pending = text[:-1].rstrip()
            continue
        pending = ""
        examples.append(text)
    assert not pending, f"`{name} --help`: the last example ends with a continuation `\\`"
    assert any(e.startswith("lagoa ") for e in examples), (
        f"`{name} --help`: no example line starts with `lagoa `:\n{output}"
    )
    return examples


def _lagoa_commands(example: str) -> list[list[str]]:
    """The words of each `lagoa …` command of a shell line (split at pipes and redirections)."""
    lexer = shlex.shlex(example, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    segments: list[list[str]] = [[]]
    for token in lexer:
        if token and all(c in lexer.punctuation_chars for c in token):
            segments.append([])
        else:
            segments[-1].append(token)
    return [words for words in segments if words[:1] == ["lagoa"]]


def _resolve(words: list[str]) -> tuple[CommandPath, click.Command, list[str]]:
    """The command a `lagoa …` command line runs, its path and the arguments it gets."""
    command: click.Command = main
    path: CommandPath = ()
    rest = words[1:]
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        command, path, rest = command.commands[rest[0]], (*path, rest[0]), rest[1:]
    if isinstance(command, click.Group) and rest and path in DEFAULT_SUBCOMMAND:
        name = DEFAULT_SUBCOMMAND[path]
        command, path = command.commands[name], (*path, name)
    if rest and (path, rest[0]) in NESTED:
        command, path, rest = NESTED[path, rest[0]], (*path, rest[0]), rest[1:]
    return path, command, rest


def _flags(args: list[str]) -> list[str]:
    return [
        arg.split("=", 1)[0]
        for arg in args
        if arg.startswith("-") and len(arg) > 1 and not arg[1:].replace(".", "").isdigit()
    ]


def _parse(path: CommandPath, command: click.Command, args: list[str]) -> None:
    """Parse ``args`` as ``lagoa <path>`` would (its parameters' types and callbacks), running nothing."""
    parent = click.Context(main, info_name="lagoa")
    group: click.Command = main
    for name in path[:-1]:
        assert isinstance(group, click.Group)
        group = group.commands[name]
        parent = click.Context(group, info_name=name, parent=parent)
    with command.make_context(path[-1], list(args), parent=parent):
        pass


def _check_help(own: CommandPath, output: str) -> None:
    name = f"lagoa {_id(own)}" if own else "lagoa"
    for example in _examples(name, output):
        commands = _lagoa_commands(example)
        assert commands, f"`{name} --help`: example runs no `lagoa` command: {example!r}"
        for words in commands:
            path, command, rest = _resolve(words)
            assert path[: len(own)] == own and path, (
                f"`{name} --help`: example {example!r} is not of `{name}` (it runs `lagoa {' '.join(path)}`)"
            )
            if path in PASS_THROUGH:
                continue
            known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
            unknown = [flag for flag in _flags(rest) if flag not in known]
            assert not unknown, (
                f"`{name} --help`: example {example!r} uses {', '.join(unknown)}, "
                f"which `lagoa {' '.join(path)}` does not have"
            )
            try:
                _parse(path, command, rest)
            except click.ClickException as exc:
                pytest.fail(f"`{name} --help`: example {example!r} does not parse: {exc.format_message()}")


@pytest.mark.parametrize("path", list(COMMANDS), ids=_id)
def test_help_ends_with_examples(path: CommandPath) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, f"`lagoa {_id(path)} --help` exited {result.exit_code}:\n{result.output}"
    _check_help(path, result.output)


def test_dbt_profile_help_has_examples() -> None:
    """`lagoa dbt profile`, which `lagoa dbt` runs itself, has examples too."""
    result = CliRunner().invoke(main, ["dbt", "profile", "--help"])
    assert result.exit_code == 0, f"`lagoa dbt profile --help` exited {result.exit_code}:\n{result.output}"
    _check_help(("dbt", "profile"), result.output)


def test_examples_are_checked() -> None:
    """The checks above catch an unknown option, another command, and arguments that do not parse."""
    with pytest.raises(AssertionError, match="does not have"):
        _check_help(("runs",), "  Examples:\n    lagoa runs --nosuch\n")
    with pytest.raises(AssertionError, match="is not of"):
        _check_help(("cdc", "run"), "  Examples:\n    lagoa cdc status\n")
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        _check_help(("backfill",), "  Examples:\n    lagoa backfill daily --start 2024-06-01\n")
    _check_help(("run",), "  Examples:\n    lagoa run daily --date 2024-06-15 | tee run.log\n")
