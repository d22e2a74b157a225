"""``lagoa dbt``, ``transform``, ``publish``, ``docs``: dbt models, gold tables and the docs site."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lagoa.cli.app import Session, handle_errors, json_option, main, project_command, project_option
from lagoa.cli.output import HumanOutput, Output


@main.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_interspersed_args": False,
        "help_option_names": [],
    }
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@project_option
@click.pass_context
@handle_errors
def dbt(ctx: click.Context, args: tuple[str, ...], session: Session) -> None:
    """Run dbt on the project's dbt project, with Lagoa's generated profile.

    `lagoa dbt sources` writes the lake's bronze and silver tables as dbt sources; `lagoa dbt
    profile --target athena|trino|snowflake|redshift` writes a profile to run the same dbt project
    on that engine (`lagoa dbt profile --help`); anything else passes through to dbt (`lagoa dbt
    build --select tag:orders`, `lagoa dbt docs generate`). `lagoa dbt --help` shows this text;
    `lagoa dbt <command> --help` shows dbt's own help. `-p/--project` is Lagoa's, written before
    or after dbt's command (dbt has no such option).

    \b
    Examples:
      lagoa dbt build --select tag:orders
      lagoa dbt sources
      lagoa dbt profile --target athena
    """
    out = HumanOutput()
    if not args or args[0] in ("-h", "--help"):
        out.message(ctx.get_help())
        return
    if args[0] == "profile":
        # Its own context (not a child of this one, which takes no --help) sharing the session.
        with dbt_profile.make_context("lagoa dbt profile", list(args[1:]), obj=session) as sub:
            dbt_profile.invoke(sub)
        return
    args, path = _lifted_project(args)
    if path is not None:
        if session.path != ".":
            raise click.UsageError(f"--project is given twice: `{session.path}` and `{path}`")
        session.path = path
    project = session.project
    if list(args[:1]) == ["sources"]:
        out.wrote(project.dbt_sources())
        return
    if not project.dbt(list(args)).success:
        sys.exit(1)


def _lifted_project(args: tuple[str, ...]) -> tuple[tuple[str, ...], str | None]:
    """``args`` without a ``-p``/``--project`` written after the dbt command (``lagoa dbt build
    -p lake``), and its value. dbt has no such option, so it can only mean Lagoa's."""
    kept: list[str] = []
    path: str | None = None
    rest = iter(args)
    for arg in rest:
        if arg in ("-p", "--project"):
            path = next(rest, None)
            if path is None:
                raise click.UsageError(f"{arg} needs a value: the project folder")
        elif arg.startswith("--project="):
            path = arg.removeprefix("--project=")
        elif arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--"):
            path = arg[2:]
        else:
            kept.append(arg)
    return tuple(kept), path


@click.command("profile", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--target",
    "-t",
    required=True,
    help="The engine's dbt adapter: athena, trino, snowflake or redshift.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder or profiles.yml to write into (default: the dbt project's profiles.yml).",
)
@click.option("--default", "make_default", is_flag=True, help="Make it the profile's default target.")
@click.option("--project", "-p", "project_path", default=None, help="Project folder (holding lagoa.yml).")
@json_option
@click.pass_obj
@handle_errors
def dbt_profile(
    session: Session,
    out: Output,
    target: str,
    out_path: Path | None,
    make_default: bool,
    project_path: str | None,
) -> None:
    """Write a dbt target for a distributed engine, derived from lagoa.yml.

    The target is named after the adapter and merged into profiles.yml beside the local one, so
    `dbt build --target athena --profiles-dir …` runs the same dbt project on Athena (or Trino,
    Snowflake, Redshift). Secrets become env_var() references; see docs/dbt-targets.md.

    \b
    Examples:
      lagoa dbt profile --target athena
      lagoa dbt profile -t snowflake --default --out ~/.dbt/profiles.yml
    """
    if project_path is not None:
        session.path = project_path
    out.dbt_profile(session.project.dbt_profile(target, out=out_path, default=make_default))


@project_command()
@click.argument("domains", nargs=-1)
@click.option("--verbose", "-v", is_flag=True, help="Print dbt's own log (by default: its errors only).")
def transform(domains: tuple[str, ...], session: Session, out: Output, verbose: bool) -> None:
    """Build the dbt models (and run their tests) of DOMAINS, or of every domain.

    A domain's models are its `select:` in lagoa.yml, by default `tag:<domain>`. Lagoa prints one
    line per model and test; dbt's own log with --verbose (always in .lagoa/dbt/logs/).

    \b
    Examples:
      lagoa transform
      lagoa transform orders marketing --json
    """
    out.dbt_build(session.project.transform(list(domains) or None, quiet=not verbose))


@project_command()
@click.argument("models", nargs=-1)
def publish(models: tuple[str, ...], session: Session, out: Output) -> None:
    """Publish dbt models to gold Iceberg tables (all models marked for publishing by default).

    `lagoa transform` publishes the models it built; this publishes again from the warehouse.

    \b
    Examples:
      lagoa publish
      lagoa publish fct_daily_store_metrics
    """
    out.published(session.project.publish(list(models) or None))


@main.group(invoke_without_command=True)
@project_option
@click.option("--verbose", "-v", is_flag=True, help="Print dbt's own log (by default: its errors only).")
@click.pass_context
@handle_errors
def docs(ctx: click.Context, session: Session, verbose: bool) -> None:
    """Generate the dbt docs site and publish it with the lake (gold/_docs/).

    `lagoa docs serve` serves the published site locally.

    \b
    Examples:
      lagoa docs
      lagoa docs -p examples/retail_lakehouse
      lagoa docs serve --port 8081
    """
    if ctx.invoked_subcommand is not None:
        return
    HumanOutput().docs_published(session.project.docs(quiet=not verbose))


@docs.command("serve")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@project_option
@handle_errors
def docs_serve(port: int, session: Session) -> None:
    """Serve the published docs site on http://127.0.0.1:PORT until Ctrl-C.

    \b
    Examples:
      lagoa docs serve
      lagoa docs serve --port 0       # any free port; the address is printed
    """
    server = session.project.docs_server(port)
    HumanOutput().docs_serving(server.server_address[1])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
