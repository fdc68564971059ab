"""What the commands share: flag types, the settings they run with, the report directory check."""

from __future__ import annotations

import argparse
import tempfile
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


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def count(text: str) -> int:
    """A whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (0 or more)")
    return value


def settings_of(args: argparse.Namespace) -> Settings:
    """Settings from the environment (and config file), then the flags given; logging set up for them."""
    overrides = {name: getattr(args, name, None) for name in ("database_url", "source", "preset", "tickers")}
    settings = load_settings(config_file=getattr(args, "config", None)).with_overrides(**overrides)
    configure_logging(settings.log_format)
    return settings


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
