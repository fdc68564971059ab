"""The `forecaster` command line: parse the flags, call the package, print the outcome.

`main` maps every failure to one line on stderr and an exit code (forecaster.errors): 0 done,
1 a runtime failure, 2 bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from forecaster.errors import EXIT_FAILURE, EXIT_USER_ERROR, CycleInterrupted, DatabaseUnavailable, UserError, one_line
from forecaster.logs import redact


def main(argv: Sequence[str] | None = None) -> int:
    import sqlalchemy as sa

    from forecaster.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except UserError as error:
        print(f"forecaster {args.command}: error: {redact(str(error))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except DatabaseUnavailable as error:
        print(f"forecaster {args.command}: database unavailable: {redact(str(error))}", file=sys.stderr)
        return EXIT_FAILURE
    except sa.exc.SQLAlchemyError as error:
        # A database that went away or is not migrated: one line, and the command failed.
        print(f"forecaster {args.command}: database error: {redact(one_line(error))}", file=sys.stderr)
        return EXIT_FAILURE
    except CycleInterrupted:
        print(f"forecaster {args.command}: stopped before the end", file=sys.stderr)
        return EXIT_FAILURE


__all__ = ["main"]
