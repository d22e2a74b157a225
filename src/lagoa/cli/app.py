"""The root ``lagoa`` group and what every command shares: the project of the invocation, loaded
once and only when a command asks for it, the ``--project``/``--json`` options, the form of the
logs (``--log-format``), and clean errors.

Command modules import this module and register themselves on :data:`main`; it imports none of
them (``lagoa.cli`` imports them all)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lagoa.cli.output import HumanOutput, JsonOutput, Output

if TYPE_CHECKING:
    from lagoa.orchestrate.project import Project

F = TypeVar("F", bound=Callable[..., Any])


class Session:
    """What one ``lagoa`` invocation shares: the project folder given with ``--project``, and the
    project, loaded on first use (so ``lagoa --help`` and ``lagoa init`` load nothing)."""

    def __init__(self) -> None:
        self._path = "."
        self._project: Project | None = None
        self.log_format: str | None = None
        """``--log-format`` (or ``LAGOA_LOG_FORMAT``); None: the project's ``observe.log_format``."""
        self._stop_logs: Callable[[], None] | None = None

    @property
    def path(self) -> str:
        return self._path

    @path.setter
    def path(self, value: str) -> None:
        if value != self._path:
            self._path, self._project = value, None

    def redact(self, text: str) -> str:
        """``text`` without the secrets of the project, if one was loaded."""
        return self._project.workspace.redactor.text(text) if self._project is not None else text

    @property
    def project(self) -> Project:
        if self._project is None:
            from lagoa.orchestrate.project import Project

            self._project = Project.load(Path(self._path))
            self.start_logs()
        return self._project

    def start_logs(self) -> None:
        """Write the ``lagoa`` logs to stderr as JSON lines, redacted, when the option or (once
        loaded) the project asks for it; the text format writes nothing more than before."""
        wanted = self.log_format
        if wanted is None and self._project is not None:
            wanted = self._project.config.observe.log_format
        if wanted == "json" and self._stop_logs is None:
            from lagoa.core.logs import json_logs

            self._stop_logs = json_logs(self.redact)

    def close(self) -> None:
        """Stop writing the logs (the invocation is over)."""
        if self._stop_logs is not None:
            self._stop_logs()
            self._stop_logs = None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lagoa")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    envvar="LAGOA_LOG_FORMAT",
    help="json: the logs on stderr as one JSON object per line, secrets redacted "
    "(default: observe.log_format in lagoa.yml, else text).",
)
@click.pass_context
def main(ctx: click.Context, log_format: str | None) -> None:
    """Lagoa: a local-first lakehouse.

    Files land raw, are typed into Iceberg bronze tables and de-duplicated into silver, and are
    queryable with SQL through a DuckDB warehouse, all on one machine.

    \b
    Examples:
      lagoa init my_lake
      lagoa run sales -p my_lake      # ingest and validate the starter's domain
      lagoa runs -p my_lake
    """
    session = ctx.ensure_object(Session)
    session.log_format = log_format
    session.start_logs()
    ctx.call_on_close(session.close)


def handle_errors(command: F) -> F:
    """Turn a LagoaError into a message on stderr, without secrets, and exit code 1 (2 for
    configuration errors)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from lagoa.core.errors import ConfigError, LagoaError

        try:
            return command(*args, **kwargs)
        except LagoaError as exc:
            session = click.get_current_context().find_object(Session)
            message = session.redact(str(exc)) if session is not None else str(exc)
            click.secho(f"error: {message}", fg="red", err=True)
            sys.exit(2 if isinstance(exc, ConfigError) else 1)

    return wrapper  # type: ignore[return-value]


def _set_path(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("is empty; give the project's folder (`.` is the current one)", ctx, param)
    ctx.ensure_object(Session).path = value
    return value


def _session(ctx: click.Context, param: click.Parameter, value: str) -> Session:
    _set_path(ctx, param, value)
    return ctx.ensure_object(Session)


def _output(_ctx: click.Context, _param: click.Parameter, value: bool) -> Output:
    return JsonOutput() if value else HumanOutput()


def _project_option(
    name: str, callback: Callable[[click.Context, click.Parameter, str], Any]
) -> Callable[[F], F]:
    return click.option(
        "--project",
        "-p",
        name,
        default=".",
        show_default=True,
        type=click.Path(file_okay=True, dir_okay=True),
        callback=callback,
        help="Project folder (holding lagoa.yml) or the lagoa.yml file.",
    )


_JSON_HELP = "Print JSON instead of tables."

project_option = _project_option("session", _session)
"""``--project/-p`` (default: the current folder): the command gets the invocation's :class:`Session`."""
json_option = click.option("--json", "out", is_flag=True, callback=_output, help=_JSON_HELP)
"""``--json``: the command gets its :class:`Output`, JSON or human."""

# For commands that take the project's path and the flag themselves (`lagoa cdc`).
project_path_option = _project_option("project_path", _set_path)
json_flag = click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)


def load_project(path: str) -> Project:
    """The project in ``path``, loaded once per invocation (with :data:`project_path_option`)."""
    session = click.get_current_context().ensure_object(Session)
    session.path = path
    return session.project


def project_command(*, with_json: bool = True) -> Callable[[F], click.Command]:
    """A ``lagoa`` subcommand that works on a project: --project, optionally --json (listed first),
    clean errors."""

    def decorate(function: F) -> click.Command:
        wrapped = handle_errors(function)
        if with_json:
            wrapped = json_option(wrapped)
        return main.command()(project_option(wrapped))

    return decorate
