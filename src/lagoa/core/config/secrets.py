"""Secrets, resolved only when used and redacted from output: ``${env:NAME}`` from the
environment, ``${aws-secret:NAME}`` (``${aws-secret:NAME#key}`` for a key of a JSON secret) from
AWS Secrets Manager, fetched once per process through the standard AWS credential chain.

A secret rarely leaves in the form it was given. It is percent-encoded in a URL (``quote`` or
``quote_plus``, hex in either case), escaped inside a JSON string (``\\/``, ``\\u002b``) when an
API echoes it back, and base64-encoded in a Basic ``Authorization`` header (``user:password``),
which some APIs echo too. A :class:`Redactor` knows all of these forms of every secret of a
project and replaces each with ``***``: in text bound for a terminal, a log or the run history
(:meth:`Redactor.text`), and in the JSON pages an HTTP source lands raw, from which bronze and
silver are read (:meth:`Redactor.json`).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import string
import urllib.parse
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from lagoa.core.errors import SecretError

SECRET_PATTERN = re.compile(r"\$\{(env|aws-secret):([^}#\s]+)(?:#([^}\s]+))?\}")
"""A reference to a secret: its kind, its name, and (Secrets Manager) the key of a JSON secret."""
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REDACTED = "***"
CREDENTIALS = frozenset({"token", "password", "client_secret"})
"""Config fields that hold a credential even when it is written in the file, not ``${env:…}``."""
PLAIN = frozenset(string.ascii_letters + string.digits + "-._~")
"""Characters no URL or JSON encoder escapes (RFC 3986's unreserved): always written as they are."""
SHORT_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}
MIN_ANCHOR = 3
"""Pages are searched for a secret's longest run of plain characters (cheap) before the regular
expression runs; a shorter run would be found in most pages, so it is not worth the search."""
EMBEDDED_BASE64 = 8
"""A secret is looked for inside any base64 text (three alignments) once its encoding at each
alignment is at least this many characters: shorter runs would match unrelated base64 data."""


def resolve_secrets(value: str) -> str:
    """Replace every secret reference in ``value`` with the secret, at use time."""
    return SECRET_PATTERN.sub(lambda match: secret_value(match), value)


def secret_value(reference: re.Match[str]) -> str:
    """The secret a :data:`SECRET_PATTERN` match refers to; a :class:`SecretError` when it
    cannot be had (the error names the secret, never a value)."""
    kind, name, key = reference.group(1), reference.group(2), reference.group(3)
    if kind == "env":
        if not ENV_NAME.match(name) or key is not None:
            raise SecretError(
                f"`{reference.group(0)}` is no environment variable reference",
                hint="write ${env:NAME} (letters, digits, _); keys of JSON secrets are for ${aws-secret:NAME#key}",
            )
        if name not in os.environ:
            raise SecretError(
                f"secret `{name}` is not set",
                hint=f"`export {name}=...` in the shell that runs lagoa, or a line `{name}=...` in the project's .env",
            )
        return os.environ[name]
    text = _aws_secret(name)
    if key is None:
        return text
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict) or key not in document or isinstance(document[key], dict | list):
        raise SecretError(
            f"the Secrets Manager secret `{name}` has no key `{key}`",
            hint=f"write ${{aws-secret:{name}}} for the whole secret, or name one of its JSON keys",
        )
    return str(document[key])


def referenced_values(text: str) -> list[str]:
    """The value of every secret ``text`` refers to that can be had (one that cannot is in no
    output, so there is nothing to redact)."""
    values = []
    for match in SECRET_PATTERN.finditer(text):
        try:
            values.append(secret_value(match))
        except SecretError:
            continue
    return [v for v in values if v]


_FAILED: dict[str, SecretError] = {}


@functools.cache
def _aws_secret(name: str) -> str:
    """The secret string of ``name`` (an id or ARN) in Secrets Manager, fetched once per process
    (a failure too: a configuration names a secret in many places)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    if name in _FAILED:
        raise _FAILED[name]
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None
    config = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 3, "mode": "standard"})
    try:
        client = boto3.client("secretsmanager", region_name=region, config=config)
        found = client.get_secret_value(SecretId=name)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        _FAILED[name] = SecretError(
            f"cannot read the Secrets Manager secret `{name}`: {code}",
            hint="check its name and region (AWS_REGION), and that these credentials may read it "
            "(secretsmanager:GetSecretValue)",
        )
        raise _FAILED[name] from None
    except BotoCoreError as exc:
        _FAILED[name] = SecretError(
            f"cannot reach Secrets Manager for the secret `{name}`: {type(exc).__name__}",
            hint="check the AWS credentials, region (AWS_REGION) and network",
        )
        _FAILED[name].transient = True
        raise _FAILED[name] from None
    if "SecretString" in found:
        return str(found["SecretString"])
    return bytes(found["SecretBinary"]).decode("utf-8", errors="replace")


def redact(text: str, values: Iterable[str]) -> str:
    """Remove every form of the secret ``values`` from text bound for output."""
    return Redactor(values).text(text)


class Redactor:
    """Replaces every form of the given secrets with ``***``.

    ``pairs`` are Basic credentials (user, password): the base64 of ``user:password`` is redacted
    whole. Patterns are compiled on first use, so a redactor nobody uses costs nothing.
    """

    def __init__(self, secrets: Iterable[str] = (), pairs: Iterable[tuple[str, str]] = ()) -> None:
        self.secrets = frozenset(s for s in secrets if s)
        self.pairs = frozenset((user, password) for user, password in pairs if user or password)

    @classmethod
    def of(cls, config: BaseModel) -> Redactor:
        """The secrets of a project (or any part of its configuration), resolved now."""
        return cls(config_secrets(config), basic_pairs(config))

    def including(self, *secrets: str) -> Redactor:
        """This redactor and ``secrets`` (an OAuth token granted at run time)."""
        new = {s for s in secrets if s} - self.secrets
        return Redactor(self.secrets | new, self.pairs) if new else self

    def text(self, text: str) -> str:
        """``text`` without any form of a secret."""
        if not self._forms or not text:
            return text
        return self._text.sub(REDACTED, text)

    def json(self, document: bytes) -> bytes:
        """A JSON document without any form of a secret, still valid JSON. A replacement never
        starts inside an escape sequence: escapes are consumed whole unless a secret begins at
        one. A document holding none of the secrets' anchors (the usual case) costs one
        substring search per anchor."""
        if not self._forms or not self._present(document):
            return document
        return self._aligned.sub(_replace_secret, document)

    def _present(self, document: bytes) -> bool:
        """Whether a secret may be in ``document``: every form of a secret holds its anchor as
        it is, so a document holding no anchor needs no regular expression."""
        if self._anchors is not None and not any(anchor in document for anchor in self._anchors):
            return False
        return self._json.search(document) is not None

    @cached_property
    def _anchors(self) -> list[bytes] | None:
        """The longest run of characters no encoder escapes, of every form (an anchor holding
        another is left out: where the shorter is absent, so is the longer); None when a form
        has no run long enough to tell (a secret of symbols): then every document is searched."""
        runs = set()
        for form in self._forms:
            run = max(_PLAIN_RUN.findall(form), key=len, default="")
            if len(run) < MIN_ANCHOR:
                return None
            runs.add(run)
        return sorted(r.encode() for r in runs if not any(o != r and o in r for o in runs))

    @cached_property
    def _forms(self) -> list[str]:
        forms = {*self.secrets, *(f for s in self.secrets for f in _embedded_base64(s))}
        for user, password in self.pairs:
            forms |= set(_base64_forms(f"{user}:{password}".encode()))
        return sorted(forms, key=len, reverse=True)  # a longer form first: a secret may contain another

    @cached_property
    def _text(self) -> re.Pattern[str]:
        return re.compile("|".join(_form(f, raw=True) for f in self._forms))

    @cached_property
    def _json(self) -> re.Pattern[bytes]:
        return re.compile("|".join(_form(f, raw=False) for f in self._forms).encode())

    @cached_property
    def _aligned(self) -> re.Pattern[bytes]:
        secrets = "|".join(_form(f, raw=False) for f in self._forms)
        return re.compile(f"(?P<secret>{secrets})|\\\\(?:u[0-9a-fA-F]{{4}}|.)".encode(), re.DOTALL)


_PLAIN_RUN = re.compile(f"[{re.escape(''.join(sorted(PLAIN)))}]+")


def _replace_secret(match: re.Match[bytes]) -> bytes:
    return REDACTED.encode() if match.group("secret") is not None else match.group(0)


def _form(secret: str, *, raw: bool) -> str:
    """A regular expression for ``secret`` as it may appear, each character as it is,
    percent-encoded or JSON-escaped. ``raw``: text, where quotes and backslashes may stand as
    they are; otherwise the inside of a JSON string, where they are always escaped."""
    return "".join(_url_character(ch, raw=raw) for ch in secret)


def _url_character(ch: str, *, raw: bool) -> str:
    if ch in PLAIN:
        return re.escape(ch)
    options = [_json_character(ch, raw=raw)]
    options.append("".join(_percent(byte, raw=raw) for byte in ch.encode()))
    if ch == " ":
        options.append(re.escape("+"))
    return "(?:" + "|".join(options) + ")"


def _percent(byte: int, *, raw: bool) -> str:
    """``%XX``, hex digits in either case."""
    digits = "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{byte:02X}")
    return _json_character("%", raw=raw) + digits


def _json_character(ch: str, *, raw: bool) -> str:
    options = []
    if raw or (ch not in '"\\' and ord(ch) >= 0x20):
        options.append(re.escape(ch))
    if ch in SHORT_ESCAPES:
        options.append(re.escape("\\" + SHORT_ESCAPES[ch]))
    options.append(_unicode_escape(ch))
    return "(?:" + "|".join(options) + ")" if len(options) > 1 else options[0]


def _unicode_escape(ch: str) -> str:
    """``\\uXXXX`` (a surrogate pair past the BMP), hex digits in either case."""
    units = ch.encode("utf-16-be")
    escapes = []
    for i in range(0, len(units), 2):
        code = f"{int.from_bytes(units[i : i + 2]):04x}"
        escapes.append(r"\\u" + "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in code))
    return "".join(escapes)


def _base64_forms(data: bytes) -> Iterator[str]:
    """``data`` in base64, standard and URL-safe, with and without padding."""
    for encoded in (base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode()):
        yield encoded
        yield encoded.rstrip("=")


def _embedded_base64(secret: str) -> Iterator[str]:
    """The characters that ``secret`` alone decides when base64 text contains it, at each of the
    three alignments, so that ``Bearer <token>`` or ``user:<password>`` in base64 is found too."""
    data = secret.encode()
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + data).decode()
        start = -(-8 * shift // 6)  # the first character without a bit of the zero prefix
        end = (8 * (shift + len(data))) // 6  # the last character whose bits are all the secret's
        core = encoded[start:end]
        if len(core) >= EMBEDDED_BASE64:
            yield core
            yield core.translate(str.maketrans("+/", "-_"))


def config_secrets(config: BaseModel) -> set[str]:
    """Every secret a configuration holds, resolved: each secret that can be had and the text it
    resolves into, every credential field (secret even when written in the file), and the
    password of every Postgres DSN (a source's, or the catalog's or state's URI)."""
    found: set[str] = set()
    for owner, name, value in _strings(config):
        references = SECRET_PATTERN.findall(value)
        found |= set(referenced_values(value))
        resolved = _resolved(value)
        if resolved is None:
            continue
        if (
            references
            or name in CREDENTIALS
            or (name == "value" and getattr(owner, "type", None) == "api_key")
        ):
            found.add(resolved)
        if name == "dsn" or (name == "uri" and resolved.startswith(("postgresql", "postgres:"))):
            found |= dsn_secrets(resolved)  # a source's DSN, or the catalog's or state's database
    return {s for s in found if s}


def basic_pairs(config: BaseModel) -> set[tuple[str, str]]:
    """The (user, password) of every Basic ``auth`` in a configuration, resolved."""
    pairs = set()
    for owner, name, value in _strings(config):
        if name == "password" and getattr(owner, "type", None) == "basic":
            written = getattr(owner, "username", None) or ""
            user, password = _resolved(written), _resolved(value)
            # An API key may be the user name, with no password.
            if user is not None and (password or (password is not None and SECRET_PATTERN.search(written))):
                pairs.add((user, password))
    return pairs


def dsn_secrets(dsn: str) -> set[str]:
    """A Postgres DSN and its password, as written (percent-encoded in a URI) and decoded."""
    passwords = [m.group(1) for m in _URI_PASSWORD.finditer(dsn)]
    if "?" in dsn:
        query = urllib.parse.parse_qsl(dsn.split("?", 1)[1], keep_blank_values=True)
        passwords += [value for key, value in query if key == "password"]
    passwords += [m.group(1) or m.group(2) for m in _KEYWORD_PASSWORD.finditer(dsn)]
    found = {dsn, *passwords, *(urllib.parse.unquote(p) for p in passwords)}
    return {s for s in found if s}


_URI_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^:@/?#]*:([^?#]*)@")
"""The password of ``postgresql://user:password@host/db`` (up to the last ``@`` of the authority)."""
_KEYWORD_PASSWORD = re.compile(r"\bpassword\s*=\s*(?:'((?:[^'\\]|\\.)*)'|([^\s']+))")
"""``password=…`` in a libpq keyword/value DSN, quoted or not."""


def _resolved(text: str) -> str | None:
    try:
        return resolve_secrets(text)
    except SecretError:  # an unset secret cannot leak
        return None


def _strings(value: Any, name: str = "", owner: BaseModel | None = None) -> Iterator[tuple[Any, str, str]]:
    """Every string in a configuration, with the model holding it and its field name (or key)."""
    if isinstance(value, str):
        yield owner, name, value
    elif isinstance(value, BaseModel):
        for field in type(value).model_fields:
            yield from _strings(getattr(value, field), field, value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, str(key), owner)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, name, owner)
