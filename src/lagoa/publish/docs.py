"""dbt's documentation site, published with the lake (``gold/_docs/``) and served locally."""

from __future__ import annotations

import functools
import http.server
import io
from pathlib import Path
from typing import TYPE_CHECKING

from lagoa.core.errors import LakeError

if TYPE_CHECKING:
    from lagoa.workspace import Workspace

DOCS = "gold/_docs"
FILES = ("index.html", "manifest.json", "catalog.json")


def publish_docs(workspace: Workspace, site: Path) -> Path:
    """Copy the documentation site dbt wrote in ``site`` into the lake's storage; returns its folder."""
    for name in FILES:
        source = site / name
        if not source.is_file():
            raise LakeError(f"dbt docs generate did not write {name}")
        workspace.storage.put_file(f"{DOCS}/{name}", io.BytesIO(source.read_bytes()))
    return workspace.storage.local_path(DOCS)


def docs_server(workspace: Workspace, port: int, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """An HTTP server for the published site (call ``serve_forever``); port 0 picks a free one."""
    folder = workspace.storage.local_path(DOCS)
    if not (folder / "index.html").is_file():
        raise LakeError("no published docs yet", hint="run `lagoa docs` first")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise LakeError(
            f"cannot listen on {host}:{port}: {exc.strerror}", hint="pick another --port (0: any free port)"
        ) from None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Requests are not worth a line each on the terminal."""
