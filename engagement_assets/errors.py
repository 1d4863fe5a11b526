"""Errors as one short line for a status row or a message: the type, the message with every secret the
process is configured with taken out, and a bound on the length."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

MAX_ERROR_LENGTH = 500
# The variables that hold secrets (the README's configuration and deployment guide): their values never
# reach a status row, a log line, metadata or an error text, whoever echoes them (a proxy, a library).
SECRET_VARIABLES = (
    "GEMINI_API_KEY",
    "NOCODB_API_TOKEN",
    "MONGODB_URI",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "DAGSTER_PG_PASSWORD",
    "ENGAGEMENT_CELERY_BROKER",
    "ENGAGEMENT_CELERY_BACKEND",
    # A Slack incoming-webhook URL is its own credential.
    "ENGAGEMENT_ALERT_WEBHOOK_URL",
    "ENGAGEMENT_API_TOKEN",
)
REDACTED = "[redacted]"
# Shorter values would redact ordinary words and are no secret worth the name.
SHORTEST_SECRET = 6
# The password of any URL with credentials (scheme://user:password@host).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^/\s@]+(?=@)")


class NotARegularFile(OSError):
    """A key names a symbolic link, a FIFO or a device: never read (it could point outside the store, or
    block a reader forever). Permanent: retrying cannot help."""


def redact(text: str, also: Iterable[str | None] = ()) -> str:
    """`text` without the configured secrets, the `also` ones, or any URL's password."""
    for secret in _secrets(also):
        text = text.replace(secret, REDACTED)
    return _URL_PASSWORD.sub(lambda match: match["head"] + REDACTED, text)


def describe(err: BaseException) -> str:
    text = redact(f"{type(err).__name__}: {err}")
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


def _secrets(also: Iterable[str | None]) -> list[str]:
    """Read when an error is described, so a secret set after start-up is covered too; longest first, so
    a secret that contains another is replaced whole."""
    values = {os.environ.get(name, "").strip() for name in SECRET_VARIABLES} | {
        (v or "").strip() for v in also
    }
    return sorted((value for value in values if len(value) >= SHORTEST_SECRET), key=len, reverse=True)
