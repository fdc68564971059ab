"""What the commands share: flag types, the settings they run with, the report directory check."""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

from forecaster.config import Settings, load_settings
from forecaster.errors import UserError
from forecaster.logs import configure_logging


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


#: The most epochs `fit --epochs` takes: each epoch keeps its loss, and a million of them is 8 MB.
MAX_EPOCHS = 1_000_000
#: The largest count a flag takes (rows, charts): what every database's integer holds.
MAX_COUNT = 2**31 - 1


def whole_number(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `minimum` to `maximum`, else one line saying so."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number from {minimum} to {maximum:,}")
        return value

    return parse


def settings_of(args: argparse.Namespace) -> Settings:
    """Settings from the environment (and config file), then the flags given; logging set up for them."""
    overrides = {name: getattr(args, name, None) for name in ("database_url", "source", "preset", "tickers")}
    settings = load_settings(config_file=getattr(args, "config", None)).with_overrides(**overrides)
    configure_logging(settings.log_format, level=log_level(args))
    return settings


def log_level(args: argparse.Namespace) -> int:
    """INFO, or what -q (WARNING) or -v (DEBUG) asked for."""
    if getattr(args, "quiet", False):
        return logging.WARNING
    return logging.DEBUG if getattr(args, "verbose", False) else logging.INFO


def writable_directory(path: Path, *, setting: str | None = None) -> Path:
    """`path` as a directory this process can write into (created if missing), else a UserError
    naming it (and the `setting` it came from)."""
    named = f"{setting} {path}" if setting else str(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{named}: exists and is not a directory") from None
    except OSError as error:
        raise UserError(f"{named}: cannot create the directory ({error.strerror})") from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise UserError(f"{named}: cannot write into the directory ({error.strerror})") from None
    return path
