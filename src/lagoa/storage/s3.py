"""S3 storage: the lake under ``s3://bucket/prefix``, through boto3 for Lagoa's own objects and
through each engine's S3 client for data (DuckDB's httpfs, pyiceberg's PyArrow file IO).

Credentials come from the standard AWS chain (environment, ``AWS_PROFILE`` and ``~/.aws``, a
container's or an instance's role) and are never written anywhere: DuckDB's secret uses the
``credential_chain`` provider, pyiceberg's file IO asks the AWS SDK itself. ``storage.endpoint``
(or ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``) points all three at an S3-compatible server.

An object appears whole or not at all (a multipart upload is invisible until it completes), so a
write needs no temporary name; what a killed writer leaves is an unfinished multipart upload,
which :meth:`S3Storage.remove_stale` aborts.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

from lagoa.core.errors import ConfigError, LakeError
from lagoa.core.sql import quote_literal

CHECK = "check the bucket, the region and the AWS credentials (AWS_PROFILE, AWS_REGION)"
DELETE_BATCH = 1000
"""Keys per DeleteObjects request: S3's limit."""


@dataclass(frozen=True)
class S3Settings:
    """How every client reaches the bucket: region, and an endpoint for S3-compatible servers."""

    region: str | None = None
    endpoint: str | None = None
    """``http(s)://host:port`` of an S3-compatible server; None for AWS itself."""

    @classmethod
    def of(cls, region: str | None, endpoint: str | None) -> S3Settings:
        """The settings from lagoa.yml, falling back on the AWS environment variables."""
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint and urlparse(endpoint).scheme not in ("http", "https"):
            raise ConfigError(
                f"the S3 endpoint `{endpoint}` is not an http(s):// URL", key="storage.endpoint"
            )
        return cls(region, endpoint.rstrip("/") if endpoint else None)

    def duckdb_secret(self) -> str:
        """The DuckDB statement that lets a connection read and write ``s3://`` through httpfs."""
        options = ["TYPE s3", "PROVIDER credential_chain"]
        if self.region:
            options.append(f"REGION {quote_literal(self.region)}")
        if self.endpoint:
            url = urlparse(self.endpoint)
            options += [
                f"ENDPOINT {quote_literal(url.netloc)}",
                "URL_STYLE 'path'",
                f"USE_SSL {'true' if url.scheme == 'https' else 'false'}",
            ]
        return f"CREATE OR REPLACE SECRET lagoa_s3 ({', '.join(options)})"

    def dbt_secret(self) -> dict[str, Any]:
        """The same secret as a dbt-duckdb profile's ``secrets`` entry (names only, no keys)."""
        secret: dict[str, Any] = {"type": "s3", "provider": "credential_chain"}
        if self.region:
            secret["region"] = self.region
        if self.endpoint:
            url = urlparse(self.endpoint)
            secret |= {"endpoint": url.netloc, "url_style": "path", "use_ssl": url.scheme == "https"}
        return secret

    def iceberg_properties(self) -> dict[str, str]:
        """pyiceberg's file IO properties (credentials stay with the AWS SDK's own chain)."""
        properties = {"py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO"}
        if self.region:
            properties["s3.region"] = self.region
        if self.endpoint:
            properties["s3.endpoint"] = self.endpoint
            properties["s3.force-virtual-addressing"] = "false"
        return properties

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        # A session of its own: boto3's default session keeps the credentials it found first,
        # and a process may open several lakes (with other credentials) one after another.
        return boto3.session.Session().client(
            "s3",
            region_name=self.region,
            endpoint_url=self.endpoint,
            config=Config(retries={"mode": "standard", "max_attempts": 8}, max_pool_connections=32),
        )


def split_location(location: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` → (``bucket``, ``some/key``)."""
    url = urlparse(location)
    if url.scheme not in ("s3", "s3a", "s3n") or not url.netloc:
        raise LakeError(f"`{location}` is not an s3://bucket/key location")
    return url.netloc, url.path.lstrip("/")


class S3Storage:
    """A bucket and key prefix on S3 (or an S3-compatible server)."""

    def __init__(self, root: str, settings: S3Settings, scratch: Path) -> None:
        bucket, prefix = split_location(root.rstrip("/") + "/")
        self.bucket = bucket
        self.prefix = prefix
        self.settings = settings
        self._scratch = scratch

    @cached_property
    def _client(self) -> Any:
        return self.settings.client()

    @property
    def warehouse(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    @property
    def s3(self) -> S3Settings:
        return self.settings

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}".rstrip("/")

    def scratch(self) -> Path:
        self._scratch.mkdir(parents=True, exist_ok=True)
        return self._scratch

    def _key(self, key: str) -> str:
        key = key.strip("/")
        return f"{self.prefix}{key}" if key not in ("", ".") else self.prefix.rstrip("/")

    def put_file(self, key: str, source: BinaryIO) -> int:
        from boto3.s3.transfer import TransferConfig

        counted = _Counting(source)
        self._call(
            "upload",
            key,
            lambda: self._client.upload_fileobj(
                counted, self.bucket, self._key(key), Config=TransferConfig(multipart_chunksize=64 << 20)
            ),
        )
        return counted.size

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call(
            "write", key, lambda: self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        )

    def put_new(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` unless an object is there already (S3's conditional
        write): True when this call made it."""
        from botocore.exceptions import ClientError

        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            ):
                return False
            raise LakeError(f"cannot write {self.location(key)}: {exc}") from None

    def read_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            return bytes(body.read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise LakeError(f"cannot read {self.location(key)}: {exc}", hint=CHECK) from None
        except BotoCoreError as exc:
            raise LakeError(f"cannot read {self.location(key)}: {exc}", hint=CHECK) from None

    def _objects(self, prefix: str) -> Iterable[dict[str, Any]]:
        folder = self._key(prefix)
        folder = folder + "/" if folder and not folder.endswith("/") else folder
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder)
        for page in pages:
            yield from page.get("Contents", [])

    def modified(self, key: str) -> float:
        head = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        return float(head["LastModified"].timestamp())

    def files_under(self, location: str) -> list[tuple[str, float]]:
        """Every object under ``location`` with its modification time (seconds since the epoch)."""
        bucket, key = split_location(location.rstrip("/") + "/")
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
        return [
            (f"s3://{bucket}/{item['Key']}", float(item["LastModified"].timestamp()))
            for page in pages
            for item in page.get("Contents", [])
        ]

    def remove(self, locations: Iterable[str]) -> None:
        by_bucket: dict[str, list[str]] = {}
        for location in locations:
            bucket, key = split_location(location)
            by_bucket.setdefault(bucket, []).append(key)
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), DELETE_BATCH):
                batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
                self._client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})

    def remove_tree(self, location: str) -> None:
        self.remove(path for path, _ in self.files_under(location))

    def remove_stale(self, prefix: str, idle_seconds: float) -> int:
        """Abort the multipart uploads under ``prefix`` started over ``idle_seconds`` ago (a killed
        writer's; an upload shows nothing under its key until it completes)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=idle_seconds)
        folder = self._key(prefix) + "/"
        aborted = 0
        for page in self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=folder
        ):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < cutoff:
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        return aborted

    def _call(self, verb: str, key: str, call: Any) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        started = time.monotonic()
        try:
            call()
        except (ClientError, BotoCoreError) as exc:
            raise LakeError(
                f"cannot {verb} {self.location(key)} after {time.monotonic() - started:.1f}s: {exc}",
                hint=CHECK,
            ) from None

    def list(self, prefix: str) -> list[str]:
        return sorted(item["Key"][len(self.prefix) :] for item in self._objects(prefix))


class _Counting(io.RawIOBase):
    """A read-only stream that counts the bytes read through it."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.size += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
