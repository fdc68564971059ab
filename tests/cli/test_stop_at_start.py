"""A stop signal while a command is still starting (reading its settings, importing, migrating)
ends it as a stop does, with one line: never killed by the signal (exit -15) or a traceback."""

from __future__ import annotations

import os
import signal

import pytest

from forecaster.cli import commands, main
from forecaster.cli.common import settings_of

pytestmark = pytest.mark.usefixtures("restored_logging")


@pytest.mark.parametrize(("flags", "code"), [([], 0), (["--once"], 1)], ids=["daemon", "once"])
def test_sigterm_while_starting_ends_run_as_a_stop_does(monkeypatch, capsys, tmp_path, flags, code):
    for name in [n for n in os.environ if n.startswith("FORECASTER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FORECASTER_DATABASE_URL", f"sqlite:///{tmp_path / 'forecaster.db'}")

    def signalled_while_reading_settings(args):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGTERM)
        return settings_of(args)

    monkeypatch.setattr(commands, "settings_of", signalled_while_reading_settings)
    handler = signal.getsignal(signal.SIGTERM)

    assert main(["run", *flags]) == code
    assert capsys.readouterr().err == "forecaster run: stopped by a signal\n"
    assert signal.getsignal(signal.SIGTERM) is handler, "the handler is put back"
