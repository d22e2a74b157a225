"""Who may use the server, and proof that a state-changing request comes from its own pages.

Bound to loopback, the server is the user's own; bound to any other address it requires a token
(:func:`check_bind`). A client proves it knows the token with an ``Authorization: Bearer`` header,
an ``X-Lagoa-Token`` header, or the session cookie the login form sets. Every comparison is
constant-time (``hmac.compare_digest``). The cookie holds an HMAC of the token under a key made at
start-up, never the token itself.

CSRF: every POST carries a token derived from the server's key (a hidden form field or the
``X-CSRF-Token`` header, which the pages' scripts send); a cross-site page cannot read it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

from lagoa.core.errors import ConfigError

SESSION_COOKIE = "lagoa_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
TOKEN_HEADER = "x-lagoa-token"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"serving on {host} lets other machines in: a token is required",
            hint="pass --token (or set LAGOA_SERVE_TOKEN), or bind to 127.0.0.1",
        )


class Guard:
    """The server's secrets: the access token (None: open, on loopback) and the key that signs
    sessions and CSRF tokens."""

    def __init__(self, token: str | None) -> None:
        self.token = token or None
        self._key = secrets.token_bytes(32)

    @property
    def required(self) -> bool:
        return self.token is not None

    def _mac(self, purpose: str, value: str = "") -> str:
        return hmac.new(self._key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()

    def allows(self, *, bearer: str | None, header: str | None, cookie: str | None) -> bool:
        """Whether a request with these credentials may go on."""
        if self.token is None:
            return True
        for given in (bearer, header):
            if given is not None and _same(given, self.token):
                return True
        return cookie is not None and _same(cookie, self.session())

    def login(self, given: str) -> bool:
        return self.token is not None and _same(given, self.token)

    def session(self) -> str:
        """The session cookie's value: it opens the server without holding the token."""
        return self._mac("session", self.token or "")

    def csrf(self) -> str:
        return self._mac("csrf")

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and _same(given, self.csrf())


def _same(given: str, expected: str) -> bool:
    """Constant-time equality of two strings, whatever characters the client sent (``compare_digest``
    refuses non-ASCII ``str``, so both are compared as UTF-8 bytes)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )
