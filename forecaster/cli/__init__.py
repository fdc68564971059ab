"""The `forecaster` command line: parse the flags, call the package, print the outcome.

`main` maps every failure to one line on stderr and an exit code (forecaster.errors): 0 done,
1 a runtime failure, 2 bad input.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from forecaster.errors import EXIT_FAILURE, EXIT_USER_ERROR, CycleInterrupted, DatabaseUnavailable, UserError, one_line
from forecaster.logs import logs_as_json, redact


def main(argv: Sequence[str] | None = None) -> int:
    import sqlalchemy as sa

    from forecaster.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except UserError as error:
        _fatal(f"forecaster {args.command}: error: {redact(str(error))}")
        return EXIT_USER_ERROR
    except DatabaseUnavailable as error:
        _fatal(f"forecaster {args.command}: database unavailable: {redact(str(error))}")
        return EXIT_FAILURE
    except sa.exc.SQLAlchemyError as error:
        # A database that went away or is not migrated: one line, and the command failed.
        _fatal(f"forecaster {args.command}: database error: {redact(one_line(error))}")
        return EXIT_FAILURE
    except CycleInterrupted:
        _fatal(f"forecaster {args.command}: stopped before the end")
        return EXIT_FAILURE


def _fatal(line: str) -> None:
    """The command's last line: a JSON log line once the settings chose JSON, else plain text."""
    if logs_as_json():
        logging.getLogger("forecaster.cli").error(line)
    else:
        print(line, file=sys.stderr)


__all__ = ["main"]
