"""AWS on this machine: moto's server mode as a process on a free port (S3, Secrets Manager,
Glue, IAM), and the environment that points boto3 (and so Lagoa) at it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MOTO = Path(sys.executable).with_name("moto_server")
REGION = "eu-west-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server as a process on a free port; its URL."""
    if not MOTO.exists():
        pytest.fail(
            f"moto's server is not installed here: run `{sys.executable} -m pip install 'moto[server]'`"
        )
    port = _free_port()
    # It logs a line per request: into a file, since a pipe nobody reads fills up and stalls it.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=log
        )
        deadline = time.monotonic() + 120
        try:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise AssertionError(f"moto_server did not start: {log.read()[-3000:]!r}") from None
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=30)


def point_at(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process and the ones it starts talk to the server at ``url``, with test credentials,
    and read nothing of the developer's own AWS set-up."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }.items():
        monkeypatch.setenv(name, value)
