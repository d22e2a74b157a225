"""dbt's documentation site, published with the lake (``gold/_docs/``) and served locally."""

from __future__ import annotations

import functools
import http.server
import io
from pathlib import Path
from typing import TYPE_CHECKING

from lagoa.core.errors import LakeError

if TYPE_CHECKING:
    from lagoa.project import Project

DOCS = "gold/_docs"
FILES = ("index.html", "manifest.json", "catalog.json")


def generate_docs(project: Project) -> Path:
    """Run ``dbt docs generate`` and copy the site into the lake's storage; returns its folder."""
    from lagoa.core.errors import TransformError
    from lagoa.transform.runner import invoke

    run = invoke(project, ["docs", "generate"])
    if not run.success:
        raise TransformError(
            "dbt docs generate failed", hint="run `lagoa dbt docs generate` to see dbt's output"
        )
    target = project.root / ".lagoa" / "dbt" / "target"
    for name in FILES:
        source = target / name
        if not source.is_file():
            raise LakeError(f"dbt docs generate did not write {name}")
        project.storage.put_file(f"{DOCS}/{name}", io.BytesIO(source.read_bytes()))
    return project.storage.local_path(DOCS)


def docs_server(project: Project, port: int, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """An HTTP server for the published site (call ``serve_forever``); port 0 picks a free one."""
    folder = project.storage.local_path(DOCS)
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
