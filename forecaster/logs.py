"""Logging for the daemon and commands: one line per event, human or JSON, never a password."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any
from urllib.parse import unquote

from pythonjsonlogger.json import JsonFormatter

#: user:password@ in any URL-looking text; the password is replaced, the rest kept. The password
#: runs to the last "@" before the path, so an unescaped "@" in it does not leave its end showing.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<password>[^/\s]*)@")

#: password=... as a URL query parameter (libpq and psycopg accept it there too).
_QUERY_PASSWORD = re.compile(r"(?P<key>[?&;](?:password|passwd|pwd)=)(?P<password>[^&;\s'\"]*)", re.IGNORECASE)

#: Passwords of the URLs given to register_url_password, to hide wherever they show.
_secrets: set[str] = set()
_SHORTEST_SECRET = 3  # shorter pieces would hide ordinary text


def register_url_password(url: str) -> None:
    """Remembers the password of a URL so that `redact` hides it even where it shows outside a
    URL: a driver's error about a host name that swallowed part of a password with an unescaped
    "@", or a password echoed percent-decoded."""
    for match in [*_URL_PASSWORD.finditer(url), *_QUERY_PASSWORD.finditer(url)]:
        password = match["password"]
        for candidate in {password, unquote(password), *password.split("@"), *unquote(password).split("@")}:
            if len(candidate) >= _SHORTEST_SECRET:
                _secrets.add(candidate)
                _secrets.add(json.dumps(candidate)[1:-1])  # as it shows in a JSON log line


def redact(text: str) -> str:
    """The text with every URL password, and every registered password, replaced by ***."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _QUERY_PASSWORD.sub(lambda m: f"{m['key']}***", text)
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _JsonFormatter(JsonFormatter):
    """One JSON object per line (python-json-logger): time (UTC), level, logger, message, and any
    `extra` fields; every password replaced by ***."""

    def __init__(self) -> None:
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            timestamp="time",
            rename_fields={"levelname": "level", "name": "logger"},
        )

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_record, record, message_dict)
        log_record["level"] = record.levelname.lower()

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(log_format: str = "human", level: int = logging.INFO) -> None:
    """Routes the `forecaster` and `apscheduler` loggers to stderr in the chosen format; keeps `apprise` out."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("forecaster", "apscheduler"):
        logging.getLogger(name).setLevel(level)
    # APScheduler's INFO says every job it adds and runs: noise, unless debug lines were asked for.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if level <= logging.DEBUG else max(level, logging.WARNING))
    # apprise's lines can quote a notification URL whole, secrets and all ("Could not load Slack URL: ..."):
    # they stay in apprise (forecaster.notify says each failure itself, with apprise's reason, secrets hidden).
    logging.getLogger("apprise").propagate = False


def logs_as_json() -> bool:
    """True once configure_logging has chosen JSON lines."""
    return any(isinstance(handler.formatter, _JsonFormatter) for handler in logging.getLogger().handlers)
