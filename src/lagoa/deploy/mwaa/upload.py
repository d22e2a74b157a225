"""Objects into an S3 bucket, uploading only what changed, and the MWAA environment told of them.

What is there is read with one listing; an object is unchanged when its ETag is the MD5 of the
bytes to upload, or when it is the ETag this deploy's manifest recorded for the same bytes (an
encrypted bucket's ETags are not MD5s). The manifest (``.lagoa/deploy-<project>.json`` under the
prefix) lists what the last deploy of the project put there, so objects it put that are gone
from the project are removed, and nothing else ever is.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lagoa.core.errors import DeployError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


@dataclass(frozen=True)
class Change:
    key: str
    """Relative to the deploy's prefix."""
    kind: str
    """``added``, ``changed``, ``unchanged`` or ``removed``."""
    size: int


@dataclass
class Plan:
    bucket: str
    prefix: str
    changes: list[Change]
    manifest_key: str
    previous: dict[str, dict[str, str]]
    etags: dict[str, str] = field(default_factory=dict)
    """Listed ETags, by relative key."""

    def of(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]


def key_for(prefix: str, relative: str) -> str:
    return f"{prefix.strip('/')}/{relative}" if prefix.strip("/") else relative


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def aws_call(what: str, action: Callable[[], Any]) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return action()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise DeployError(
            f"could not {what}: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
        ) from None
    except BotoCoreError as exc:
        raise DeployError(
            f"could not {what}: {exc}",
            hint="check the AWS credentials and region (AWS_PROFILE, AWS_REGION) and the endpoint",
        ) from None


def plan(
    s3: Any, bucket: str, prefix: str, objects: Mapping[str, bytes], *, project: str, shared: tuple[str, ...]
) -> Plan:
    """What deploying ``objects`` (by key relative to ``prefix``) would change."""
    manifest_key = key_for(prefix, f".lagoa/deploy-{project}.json")
    listed: dict[str, str] = {}
    root = key_for(prefix, "")
    paginator = s3.get_paginator("list_objects_v2")
    pages = aws_call(
        f"list s3://{bucket}/{root}", lambda: list(paginator.paginate(Bucket=bucket, Prefix=root))
    )
    for page in pages:
        for item in page.get("Contents", []):
            listed[item["Key"][len(root) :]] = item["ETag"].strip('"')
    previous: dict[str, dict[str, str]] = {}
    if manifest_key[len(root) :] in listed:
        body = aws_call(
            f"read s3://{bucket}/{manifest_key}",
            lambda: s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read(),
        )
        previous = json.loads(body).get("objects", {})
    changes = []
    for relative, data in objects.items():
        etag = listed.get(relative)
        recorded = previous.get(relative, {})
        if etag is None:
            kind = "added"
        elif etag == _md5(data) or (recorded.get("etag") == etag and recorded.get("sha256") == _sha256(data)):
            kind = "unchanged"
        else:
            kind = "changed"
        changes.append(Change(relative, kind, len(data)))
    for relative in sorted(set(previous) - set(objects) - set(shared)):
        if relative in listed:
            changes.append(Change(relative, "removed", 0))
    return Plan(bucket, prefix, changes, manifest_key, previous, etags=listed)


def apply(s3: Any, planned: Plan, objects: Mapping[str, bytes]) -> dict[str, str]:
    """Upload what was added or changed, remove what is gone, and record the deploy; returns
    the S3 version of every uploaded object (empty in a bucket without versioning)."""
    versions: dict[str, str] = {}
    etags = dict(planned.etags)
    for change in planned.changes:
        key = key_for(planned.prefix, change.key)
        if change.kind in ("added", "changed"):
            data = objects[change.key]
            put = aws_call(
                f"upload s3://{planned.bucket}/{key}",
                functools.partial(s3.put_object, Bucket=planned.bucket, Key=key, Body=data),
            )
            etags[change.key] = put["ETag"].strip('"')
            if put.get("VersionId"):
                versions[change.key] = put["VersionId"]
        elif change.kind == "removed":
            aws_call(
                f"remove s3://{planned.bucket}/{key}",
                functools.partial(s3.delete_object, Bucket=planned.bucket, Key=key),
            )
    manifest = {
        "objects": {
            relative: {"etag": etags[relative], "sha256": _sha256(data)} for relative, data in objects.items()
        }
    }
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    aws_call(
        f"upload s3://{planned.bucket}/{planned.manifest_key}",
        lambda: s3.put_object(Bucket=planned.bucket, Key=planned.manifest_key, Body=body),
    )
    return versions


def current_version(s3: Any, bucket: str, key: str) -> str | None:
    head = aws_call(f"read s3://{bucket}/{key}", lambda: s3.head_object(Bucket=bucket, Key=key))
    version = head.get("VersionId")
    return None if version in (None, "null") else str(version)


def describe_environment(mwaa: Any, name: str) -> dict[str, Any]:
    """The MWAA environment ``name`` as MWAA describes it (``AirflowVersion``, its S3 paths...)."""
    found = aws_call(f"read the MWAA environment {name}", lambda: mwaa.get_environment(Name=name))
    return dict(found["Environment"])


def update_environment(mwaa: Any, name: str, request: dict[str, str]) -> str:
    """Ask MWAA to update ``name`` with ``request``'s S3 paths and versions; returns its ARN."""
    done = aws_call(
        f"update the MWAA environment {name}", lambda: mwaa.update_environment(Name=name, **request)
    )
    return str(done["Arn"])
