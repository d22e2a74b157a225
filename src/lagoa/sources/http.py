"""REST API sources: request pages, follow the pagination, retry what can be retried, and write
every page to one file of JSON lines — the raw landing and bronze's input.

Each line is ``{"_lagoa_page": {request metadata, secrets removed}, "body": <the page as
received>}``. Python parses each page once, to find the records and the next page; DuckDB then
reads the records out of the file (``json_extract(line, '$.body.<records>[*]')``), so no
record is re-serialised in Python.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3

from lagoa.core.config import HttpSource, Redactor, resolve_secrets
from lagoa.core.errors import ConfigError, SourceError
from lagoa.sources.context import SourceContext

log = logging.getLogger("lagoa.sources.http")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
TEMPLATE = re.compile(r"\{\{\s*([a-z_.]+)\s*\}\}")
LINK_NEXT = re.compile(r'<([^>]+)>\s*;[^,]*rel="?next"?', re.IGNORECASE)
EXCERPT = 300


@dataclass
class FetchResult:
    pages: int = 0
    records: int = 0
    waiting: float = 0.0
    """Seconds spent waiting on the server (requests and retry back-off)."""
    retries: int = 0
    urls: list[str] = field(default_factory=list)
    """The first page's URL, secrets removed."""


def render(text: str, context: SourceContext, source: str) -> str:
    values = context.values()

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ConfigError(
                f"source `{source}`: unknown template `{{{{ {name} }}}}`",
                hint="use {{ interval.start }}, {{ interval.end }} or {{ watermark }}",
            )
        return values[name]

    return TEMPLATE.sub(substitute, text)


def dig(body: Any, path: str) -> Any:
    """The value at a dotted path (``data``, ``meta.next``, ``$.results.items``); None when absent."""
    value = body
    for part in [p for p in path.removeprefix("$").strip(".").split(".") if p]:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


class Client:
    """Requests for one source: auth, rate limit, retries with back-off honouring Retry-After."""

    def __init__(self, name: str, config: HttpSource, pool: urllib3.PoolManager, redactor: Redactor) -> None:
        self.name = name
        self.config = config
        self.pool = pool
        self.redactor = redactor
        self.result = FetchResult()
        self._last = 0.0
        self._token: str | None = None

    def redact(self, text: str) -> str:
        return self.redactor.text(text)

    def excerpt(self, data: bytes) -> str:
        """The start of an answer's body: redacted, then cut, so that no secret is cut in two."""
        return self.redact(data[: EXCERPT * 16].decode("utf-8", "replace"))[:EXCERPT]

    def get(self, url: str, params: dict[str, str], page: int) -> tuple[bytes, dict[str, str]]:
        """One page: its body and headers. Retryable failures are retried; others raise."""
        config = self.config
        headers = {"Accept": "application/json", **{k: resolve_secrets(v) for k, v in config.headers.items()}}
        query = {k: resolve_secrets(v) for k, v in params.items()}
        self._authenticate(headers, query)
        full = _with_query(url, query)
        shown = self.redact(full)
        body = (
            json.dumps(config.body).encode() if config.body is not None and config.method == "POST" else None
        )
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(config.retries + 1):
            self._pace()
            started = time.monotonic()
            try:
                response = self.pool.request(
                    config.method,
                    full,
                    body=body,
                    headers=headers,
                    timeout=urllib3.Timeout(total=config.timeout),
                    retries=False,
                    redirect=True,
                    preload_content=True,
                )
            except urllib3.exceptions.HTTPError as exc:
                self.result.waiting += time.monotonic() - started
                problem = f"{exc.__class__.__name__}: {self.redact(str(exc))[:EXCERPT]}"
                if attempt < config.retries:
                    self._back_off(attempt, None, _unreachable(exc))
                    continue
                raise SourceError(
                    self.name,
                    f"{config.method} {shown} failed after {attempt + 1} attempts: {problem}",
                    hint="is the server up? a re-run resumes from the last committed watermark",
                    transient=True,
                ) from None
            self.result.waiting += time.monotonic() - started
            status = response.status
            if status < 300:
                return response.data, {k.lower(): v for k, v in response.headers.items()}
            excerpt = self.excerpt(response.data)
            if status in RETRY_STATUSES and attempt < config.retries:
                self._back_off(attempt, response.headers.get("Retry-After"), f"{status} (page {page})")
                continue
            raise SourceError(
                self.name,
                f"{config.method} {shown} (page {page}) answered {status}: {excerpt}",
                hint=None
                if status in RETRY_STATUSES
                else "check the URL, parameters and credentials; this is not retried",
                transient=status in RETRY_STATUSES,
            )
        raise AssertionError("unreachable")

    def _back_off(self, attempt: int, retry_after: str | None, problem: str) -> None:
        """Wait before retry ``attempt + 1``, saying so: the run shows it as it happens."""
        self.result.retries += 1
        wait = _retry_after(retry_after)
        if wait is None:
            wait = self.config.backoff * 2.0**attempt * (1.0 + random.random() / 2)
        log.warning(
            "%s from %s, retrying in %s (retry %d of %d)",
            problem, self.name, _seconds(wait), attempt + 1, self.config.retries,
        )  # fmt: skip
        self.result.waiting += wait
        time.sleep(wait)

    def _pace(self) -> None:
        if self.config.rate_limit:
            gap = 1.0 / self.config.rate_limit - (time.monotonic() - self._last)
            if gap > 0:
                time.sleep(gap)
        self._last = time.monotonic()

    def _authenticate(self, headers: dict[str, str], query: dict[str, str]) -> None:
        auth = self.config.auth
        if auth is None:
            return
        if auth.type == "bearer":
            headers["Authorization"] = f"Bearer {resolve_secrets(auth.token or '')}"
        elif auth.type == "basic":
            import base64

            pair = f"{resolve_secrets(auth.username or '')}:{resolve_secrets(auth.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif auth.type == "api_key":
            target = headers if auth.location == "header" else query
            target[auth.name or ""] = resolve_secrets(auth.value or "")
        else:
            headers["Authorization"] = f"Bearer {self._oauth_token()}"

    def _oauth_token(self) -> str:
        """OAuth2 client credentials: one token per fetch."""
        if self._token is not None:
            return self._token
        auth = self.config.auth
        assert auth is not None
        form = {
            "grant_type": "client_credentials",
            "client_id": resolve_secrets(auth.client_id or ""),
            "client_secret": resolve_secrets(auth.client_secret or ""),
        }
        if auth.scope:
            form["scope"] = auth.scope
        response = self.pool.request(
            "POST",
            resolve_secrets(auth.token_url or ""),
            body=urllib.parse.urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=urllib3.Timeout(total=self.config.timeout),
            retries=False,
        )
        if response.status >= 300:
            excerpt = self.excerpt(response.data)
            raise SourceError(self.name, f"the OAuth2 token request answered {response.status}: {excerpt}")
        token = json.loads(response.data).get("access_token")
        if not token:
            raise SourceError(self.name, "the OAuth2 token response has no access_token")
        self.redactor = self.redactor.including(str(token))
        self._token = str(token)
        return self._token


def fetch(
    name: str,
    config: HttpSource,
    target: Path,
    context: SourceContext,
    pool: urllib3.PoolManager | None = None,
    redactor: Redactor | None = None,
) -> FetchResult:
    """Request every page into ``target`` (JSON lines); raise on the first page that fails.
    ``redactor`` (default: the source's own secrets) removes secrets from messages and pages."""
    client = Client(name, config, pool or urllib3.PoolManager(maxsize=4), redactor or Redactor.of(config))
    with target.open("wb") as out:
        for number, (meta, body, records) in enumerate(_pages(client, context), start=1):
            line = json.dumps(meta, separators=(",", ":")).encode()
            # A JSON document holds raw line breaks only as whitespace: dropping them keeps it one line.
            body = body.replace(b"\r", b"").replace(b"\n", b" ")
            # Some APIs echo credentials (a next link carrying the key, the Authorization header):
            # the raw page, and so bronze and silver, which are read from it, keep none.
            page = client.redactor.json(b'{"_lagoa_page":' + line + b',"body":' + body + b"}")
            out.write(page + b"\n")
            client.result.pages = number
            client.result.records += records
    return client.result


def _pages(client: Client, context: SourceContext) -> Iterator[tuple[dict[str, Any], bytes, int]]:
    config, name = client.config, client.name
    paginate = config.paginate
    base = resolve_secrets(config.base_url)  # a secret base URL (or one set per environment)
    url = base.rstrip("/") + "/" + config.endpoint.lstrip("/") if config.endpoint else base
    params = {k: render(v, context, name) for k, v in config.params.items()}
    if paginate.size_param and paginate.size:
        params[paginate.size_param] = str(paginate.size)
    page_number, offset = paginate.start, 0
    if paginate.type == "page_number":
        params[paginate.param or "page"] = str(page_number)
    elif paginate.type == "offset":
        params[paginate.param or "offset"] = "0"
    number = 0
    while True:
        number += 1
        fetched_at = datetime.now(UTC)
        body, headers = client.get(url, params, number)
        shown = client.redact(_with_query(url, params))
        if number == 1:
            client.result.urls.append(shown)
        try:
            parsed = json.loads(body)
        except ValueError as exc:
            raise SourceError(name, f"page {number} ({shown}) is not valid JSON: {exc}") from None
        records = dig(parsed, config.records) if config.records else parsed
        if not isinstance(records, list):
            where = f"at `{config.records}`" if config.records else "(the page is not a list)"
            raise SourceError(
                name,
                f"page {number} ({shown}) has no list of records {where}",
                hint=f"set `sources.{name}.records` to the JSON path of the records",
            )
        meta = {"source": name, "page": number, "url": shown, "fetched_at": fetched_at.isoformat()}
        yield meta, body, len(records)
        if config.max_pages and number >= config.max_pages:
            return
        if paginate.type == "none":
            return
        if paginate.type == "page_number":
            if not records or (paginate.size and len(records) < paginate.size):
                return
            page_number += 1
            params[paginate.param or "page"] = str(page_number)
        elif paginate.type == "offset":
            if not records or (paginate.size and len(records) < paginate.size):
                return
            offset += len(records)
            params[paginate.param or "offset"] = str(offset)
        elif paginate.type == "cursor":
            cursor = dig(parsed, paginate.path or "next_cursor")
            if cursor in (None, "") or not records:
                return
            params[paginate.param or "cursor"] = str(cursor)
        elif paginate.type == "next_url":
            following = dig(parsed, paginate.path or "next")
            if not following:
                return
            url, params = _split(urllib.parse.urljoin(url, str(following)))
        else:  # link_header
            match = LINK_NEXT.search(headers.get("link", ""))
            if match is None:
                return
            url, params = _split(urllib.parse.urljoin(url, match.group(1)))


def _with_query(url: str, params: dict[str, str]) -> str:
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode(params)}"


def _split(url: str) -> tuple[str, dict[str, str]]:
    parts = urllib.parse.urlsplit(url)
    params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    return urllib.parse.urlunsplit(parts._replace(query="")), params


def _unreachable(error: urllib3.exceptions.HTTPError) -> str:
    """What a request that got no answer ran into, in a few words ("connection refused")."""
    reason = getattr(error, "reason", None) or error
    text = str(reason).lower()
    for known in ("connection refused", "timed out", "name or service not known", "connection reset"):
        if known in text:
            return known
    return error.__class__.__name__


def _seconds(wait: float) -> str:
    return f"{wait:.0f} s" if wait >= 10 else f"{wait:.1f} s"


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
