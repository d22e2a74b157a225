"""``lagoa serve``: the project's web app and JSON API (``lagoa.serve``), until Ctrl-C or SIGTERM."""

from __future__ import annotations

import socket

import click

from lagoa.cli.app import Session, handle_errors, main, project_option


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0: any free port."
)
@click.option(
    "--token",
    envvar="LAGOA_SERVE_TOKEN",
    help="Access token (required when --host is not a loopback address); clients send it as "
    "`Authorization: Bearer <token>`, people sign in with it. Also LAGOA_SERVE_TOKEN.",
)
@project_option
@handle_errors
def serve(host: str, port: int, token: str | None, session: Session) -> None:
    """Serve the project's web app: runs with their timelines and logs, tables, quality,
    lineage, a read-only SQL console and the dbt docs, with the JSON API behind them
    (described at /api/openapi.json).

    \b
    Examples:
      lagoa serve                          # http://127.0.0.1:8080
      lagoa serve --port 0                 # any free port; the address is printed
      lagoa serve --host 0.0.0.0 --token "$(openssl rand -hex 16)"
    """
    import uvicorn

    from lagoa.serve.app import create_app
    from lagoa.serve.security import check_bind

    check_bind(host, token)
    project = session.project
    app = create_app(project, token=token, host=host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets it knows are TCP, and without
    # it every response on a kept-alive connection waits ~40 ms for the client's delayed ACK.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(2048)  # connections wait from now on, before the app has started
    except OSError as exc:
        listener.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = listener.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    metrics = project.serve_metrics()
    click.echo(f"serving {project.config.name} at http://{shown}:{bound}/ (Ctrl-C stops)")
    if metrics is not None:
        click.echo(f"metrics at http://{metrics[0]}:{metrics[1]}/metrics")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[listener])
