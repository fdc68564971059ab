"""The exceptions and failure records every layer shares, and what each means for a command's exit code.

Exit codes, the same for every command: 0 done; 1 a runtime failure (the database cannot be
reached, a run failed or was stopped before its end); 2 bad input (a flag, a setting, a file,
or another process already holding the database), with one line on stderr naming the thing at fault;
141 (128 + SIGPIPE, as a shell reports `git log | head`) when the reader of its output went away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USER_ERROR = 2
EXIT_CLOSED_PIPE = 141

FailureStage = Literal["fetch", "prices", "validate", "train", "write"]


class UserError(Exception):
    """Bad input from the user (a file, a setting, a flag): printed as one line, exit code 2.

    The message must name the thing at fault, e.g. "prices.csv: no close column".
    """


class DatabaseUnavailable(Exception):
    """The database cannot be reached (refused, down, restarting): one line, exit code 1.

    The message names the database with its password hidden.
    """


class CycleInterrupted(Exception):
    """A stop was requested mid-cycle; everything committed so far is whole."""


class NotInCharge(CycleInterrupted):
    """This process no longer holds the scheduler lock (its database connection died, or another
    process took over): it must not start or finish cycles any more."""


@dataclass(frozen=True)
class TickerFailure:
    """Why one ticker got no forecast in a cycle."""

    stage: FailureStage
    reason: str  # one line


def one_line(error: BaseException, *, limit: int = 300) -> str:
    """The exception's class and its message on one line, at most `limit` characters; of a
    database driver's error only the first line (the rest can be a multi-kilobyte SQL dump)."""
    original = getattr(error, "orig", None) or error
    text = str(original).strip()
    if original is not error:
        text = text.splitlines()[0] if text else ""
    text = " ".join(text.split())
    return f"{type(original).__name__}: {text}"[:limit] if text else type(original).__name__
