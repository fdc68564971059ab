"""The `forecaster` command line: parse the flags, call the package, print the outcome.

`main` maps every failure to one line on stderr and an exit code (forecaster.errors): 0 done,
1 a runtime failure, 2 bad input; output cut short by its reader (`forecaster predictions | head`)
ends quietly. With no arguments it prints the help.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from forecaster.errors import (
    EXIT_CLOSED_PIPE,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USER_ERROR,
    CycleInterrupted,
    DatabaseUnavailable,
    UserError,
    one_line,
)
from forecaster.logs import logs_as_json, redact


def main(argv: Sequence[str] | None = None) -> int:
    with _stop_signals_interrupt():
        return _main(argv)


@contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM, like SIGINT, raises KeyboardInterrupt until a command installs its own stop
    handling (forecaster.signals): a container stopped while the daemon starts then exits as a
    stopped daemon does, not killed by the signal (-15)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    import sqlalchemy as sa

    from forecaster.cli.parser import build_parser

    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not arguments:
        parser.print_help()
        return EXIT_OK
    args = parser.parse_args(arguments)
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # a reader gone shows here, and not as a traceback at exit
        return code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # what is left to flush goes nowhere
        return EXIT_CLOSED_PIPE
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
    except OSError as error:  # a file it writes: a full disk, a directory gone, no permission
        where = f"{error.filename}: " if error.filename else ""
        _fatal(f"forecaster {args.command}: {where}{error.strerror or one_line(error)}")
        return EXIT_FAILURE
    except KeyboardInterrupt:  # a stop signal before the command could stop in order
        _fatal(f"forecaster {args.command}: stopped by a signal")
        daemon = args.command == "run" and not args.once
        return EXIT_OK if daemon else EXIT_FAILURE  # a daemon asked to stop has done what it was asked


#: A command's last line is cut to this many characters (a 100 MB CSV field would be all of it).
MAX_ERROR_LINE = 500


def _fatal(line: str) -> None:
    """The command's last line: a JSON log line once the settings chose JSON, else plain text."""
    if len(line) > MAX_ERROR_LINE:
        line = f"{line[:MAX_ERROR_LINE]}... ({len(line) - MAX_ERROR_LINE:,} more characters)"
    if logs_as_json():
        logging.getLogger("forecaster.cli").error(line)
    else:
        print(line, file=sys.stderr)


__all__ = ["main"]
