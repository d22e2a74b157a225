"""dbt's documentation site, published with the lake (``gold/_docs/``) and served locally."""

from __future__ import annotations

import http.server
import mimetypes
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from lagoa.core.errors import LakeError

if TYPE_CHECKING:
    from lagoa.storage import Storage
    from lagoa.workspace import Workspace

DOCS = "gold/_docs"
FILES = ("index.html", "manifest.json", "catalog.json")


def publish_docs(workspace: Workspace, site: Path) -> str:
    """Copy the documentation site dbt wrote in ``site`` into the lake's storage; returns its location."""
    for name in FILES:
        source = site / name
        if not source.is_file():
            raise LakeError(f"dbt docs generate did not write {name}")
        workspace.storage.put_bytes(f"{DOCS}/{name}", source.read_bytes())
    return workspace.storage.location(DOCS)


def docs_server(workspace: Workspace, port: int, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """An HTTP server for the published site (call ``serve_forever``); port 0 picks a free one.
    It serves the site's files from the lake's storage, wherever that is."""
    storage = workspace.storage
    if storage.read_bytes(f"{DOCS}/index.html") is None:
        raise LakeError("no published docs yet", hint="run `lagoa docs` first")

    class Handler(_SiteHandler):
        site = storage

    try:
        return http.server.ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise LakeError(
            f"cannot listen on {host}:{port}: {exc.strerror}", hint="pick another --port (0: any free port)"
        ) from None


class _SiteHandler(http.server.BaseHTTPRequestHandler):
    """GET of the site's few files, read from storage (only those files: no path leads elsewhere)."""

    site: Storage

    def do_GET(self) -> None:
        name = posixpath.basename(unquote(urlparse(self.path).path)) or "index.html"
        data = self.site.read_bytes(f"{DOCS}/{name}") if name in FILES else None
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", mimetypes.guess_type(name)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Requests are not worth a line each on the terminal."""
