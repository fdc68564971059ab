"""The exceptions and failure records every layer shares, and what each means for a command's exit code.

Exit codes, the same for every command: 0 done; 1 a runtime failure (the database cannot be
reached, a run failed or was stopped before its end); 2 bad input (a flag, a setting, a file,
or another process already holding the database), with one line on stderr naming the thing at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USER_ERROR = 2

FailureStage = Literal["fetch", "validate", "train", "write"]


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


def one_line(error: BaseException) -> str:
    """The exception's class and the first line of its message (a driver's error can carry a
    multi-kilobyte SQL dump after it)."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines()
    return f"{type(original).__name__}: {lines[0].strip()}" if lines else type(original).__name__
