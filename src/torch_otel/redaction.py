"""One redaction for everything torch-otel prints, raises, exports or lets the SDK log.

A user can put a secret in three places: the userinfo of an endpoint URL
(``http://user:token@host``), its query string (``?api_key=...``), and header values
(``OTEL_EXPORTER_OTLP_HEADERS``, a profile's ``headers``). Messages built by
torch-otel never include header values, and show URLs through :func:`redact_url`;
messages torch-otel did not build (a transport's exception text, the SDK's own log
lines) go through a :class:`Redactor` that knows the configured secrets and also
rewrites any URL it finds. Debug lines, ``doctor``, ``ConfigError`` messages and the
exit report all pass through here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit, urlunsplit

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 4
"""Shorter configured values are not searched for in free text (they would match
everywhere); they are still never printed by torch-otel's own messages."""

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """``url`` without userinfo or query: ``https://<redacted>@host:4318/v1/logs?<redacted>``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return _redact_unparseable(url)
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc += f":{port}"
    if parts.username is not None or parts.password is not None:
        netloc = f"{REDACTED}@{netloc}"
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _redact_unparseable(url: str) -> str:
    """Best effort for a URL ``urlsplit`` refuses (a bad port): drop userinfo and query."""
    url = re.sub(r"(://)[^/@\s]*@", rf"\g<1>{REDACTED}@", url)
    return re.sub(r"\?.*$", f"?{REDACTED}", url)


def url_secrets(url: str | None) -> list[str]:
    """The parts of a URL that may be secret: userinfo and query values."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.username or "", parts.password or "", parts.query]
    found.extend(value for _name, value in parse_qsl(parts.query, keep_blank_values=True))
    return [secret for secret in found if secret]


class Redactor:
    """Removes known secrets, and the userinfo and query of any URL, from free text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        unique = {secret for secret in secrets if len(secret) >= MIN_SECRET_LENGTH}
        self._secrets = sorted(unique, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _URL.sub(lambda match: redact_url(match.group(0)), text)

    def merged(self, other: Redactor) -> Redactor:
        return Redactor([*self._secrets, *other._secrets])


class RedactingFilter(logging.Filter):
    """Rewrites a logger's records through a :class:`Redactor` before any handler sees them.

    Put on the loggers of the OpenTelemetry exporters torch-otel builds, whose warnings
    quote endpoints, transport errors and, for a malformed header, its value.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot render is the SDK's problem, not ours
            return True
        record.msg = self.redactor(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # The traceback text would quote the exception again: keep its type only.
            record.exc_text = f"{type(record.exc_info[1]).__name__}: {REDACTED}"
            record.exc_info = None
        return True


def attach_redaction(logger_names: Iterable[str], redactor: Redactor) -> None:
    """Make sure each named logger redacts through ``redactor`` (merged with any before)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        existing = next((f for f in logger.filters if isinstance(f, RedactingFilter)), None)
        if existing is None:
            logger.addFilter(RedactingFilter(redactor))
        else:
            existing.redactor = existing.redactor.merged(redactor)
