"""Notifiers: Slack incoming webhooks, generic JSON webhooks and e-mail, subscribed to a run's
event stream.

Secrets (webhook URLs, tokens, SMTP passwords) are resolved from ``${env:NAME}`` only when a
message is sent, and a failed delivery is reported without them: a secret never reaches a log,
the state database or the terminal.
"""

from __future__ import annotations

import json
import smtplib
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from lagoa.core.config import SECRET_PATTERN, Notifier, redact, referenced_values, resolve_secrets
from lagoa.core.errors import SecretError
from lagoa.orchestrate.executor import Event

KINDS = {
    "task_failed": "failure",
    "task_retried": "retry",
    "run_finished": "success",
    "sla_missed": "sla_miss",
}
TIMEOUT = 10


@dataclass(frozen=True)
class RunContext:
    """What a message says about the run besides the event."""

    pipeline: str
    interval: tuple[datetime, datetime] | None
    url: str | None = None
    """Where the run can be seen, when a server shows runs."""


def subscriber(notifier: Notifier, context: RunContext) -> Callable[[Event], None]:
    """A subscriber sending ``notifier``'s chosen events."""

    def send(event: Event) -> None:
        kind = KINDS.get(event.kind)
        if kind is None or kind not in notifier.events:
            return
        if kind == "success" and event.error is not None:  # run_finished with failures
            return
        payload = _payload(kind, event, context)
        secrets = _secrets(notifier)
        try:
            if notifier.kind == "slack":
                _post(resolve_secrets(notifier.url or ""), {"text": _text(payload)}, {})
            elif notifier.kind == "webhook":
                headers = {k: resolve_secrets(v) for k, v in notifier.headers.items()}
                _post(resolve_secrets(notifier.url or ""), payload, headers)
            else:
                _email(notifier, payload)
        except Exception as exc:  # a failed delivery must not fail the run, nor leak a secret
            print(
                f"warning: {notifier.kind} notification failed: {redact(str(exc), secrets)}", file=sys.stderr
            )

    return send


def _payload(kind: str, event: Event, context: RunContext) -> dict[str, object]:
    start, end = context.interval or (None, None)
    return {
        "event": kind,
        "pipeline": context.pipeline,
        "run_id": event.run_id,
        "task": event.task,
        "attempt": event.attempt or None,
        "interval": {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None},
        "error": event.error,
        "at": event.at.isoformat(),
        "url": context.url,
    }


def _text(payload: dict[str, object]) -> str:
    """The Slack message: what happened, where, for which interval, and why."""
    interval = payload["interval"]
    assert isinstance(interval, dict)
    headline = {
        "failure": ":red_circle: Lagoa task failed",
        "retry": ":warning: Lagoa task retrying",
        "success": ":large_green_circle: Lagoa run succeeded",
        "sla_miss": ":hourglass: Lagoa SLA missed",
    }[str(payload["event"])]
    lines = [
        f"*{headline}*",
        f"pipeline `{payload['pipeline']}`" + (f", task `{payload['task']}`" if payload["task"] else ""),
        f"interval {interval['start']} → {interval['end']}" if interval["start"] else "no data interval",
        f"run `{payload['run_id']}`" + (f", attempt {payload['attempt']}" if payload["attempt"] else ""),
    ]
    if payload["error"]:
        lines.append(f"error: {str(payload['error'])[:500]}")
    if payload["url"]:
        lines.append(f"<{payload['url']}|open the run>")
    return "\n".join(lines)


def _post(url: str, body: dict[str, object], headers: dict[str, str]) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        response.read()


def _email(notifier: Notifier, payload: dict[str, object]) -> None:
    message = EmailMessage()
    message["Subject"] = f"[lagoa] {payload['event']}: {payload['pipeline']} {payload['task'] or ''}".strip()
    message["From"] = notifier.sender or ""
    message["To"] = ", ".join(notifier.to)
    message.set_content(_text(payload).replace("*", ""))
    with smtplib.SMTP(notifier.smtp_host or "", notifier.smtp_port, timeout=TIMEOUT) as smtp:
        if notifier.username:
            smtp.starttls()
            smtp.login(resolve_secrets(notifier.username), resolve_secrets(notifier.password or ""))
        smtp.send_message(message)


def _secrets(notifier: Notifier) -> list[str]:
    """Every secret value the notifier uses (each ``${env:NAME}`` and the texts holding them),
    to scrub from error messages."""
    texts = [notifier.url or "", notifier.password or "", notifier.username or "", *notifier.headers.values()]
    values = [value for text in texts for value in referenced_values(text)]
    for text in texts:
        if SECRET_PATTERN.search(text):
            try:
                values.append(resolve_secrets(text))
            except SecretError:  # an unset secret cannot leak
                continue
    return sorted((v for v in values if v), key=len, reverse=True)
