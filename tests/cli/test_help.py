"""The command line as a new user meets it: --version, a description on every command, every flag's
format and default. (`forecaster predictions`: tests/cli/test_predictions.py.)"""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib.metadata import version

import pytest

from forecaster.cli.parser import build_parser

pytestmark = pytest.mark.usefixtures("restored_logging")


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, by its name as typed ("db upgrade" for the nested one)."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[f"{prefix}{name}"] = sub
                    walk(sub, f"{prefix}{name} ")

    walk(build_parser(), "")
    return found


def test_forecaster_alone_prints_the_help_and_exits_0():
    result = subprocess.run([sys.executable, "-m", "forecaster"], capture_output=True, text=True, check=False)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage: forecaster") and "run" in result.stdout and "predictions" in result.stdout


def test_version_prints_the_installed_version():
    result = subprocess.run(
        [sys.executable, "-m", "forecaster", "--version"], capture_output=True, text=True, check=False
    )

    assert (result.returncode, result.stdout.strip()) == (0, f"forecaster {version('forecaster')}")


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_command_has_a_paragraph_saying_what_it_does(command):
    parser = _commands()[command]

    description = parser.description or ""
    assert description.count(".") >= 2 and len(description) > 80, f"{command}: {description!r}"


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_flag_says_its_format_and_default(command):
    for action in _commands()[command]._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        assert action.help, f"{command} {action.option_strings}: no help"
        takes_a_value = action.nargs != 0
        if takes_a_value:
            assert action.metavar or action.choices, f"{command} {action.option_strings}: no format shown"
            assert action.required or "default" in action.help, f"{command} {action.option_strings}: {action.help!r}"
