"""The container: Dockerfile, docker-compose.yml and .env.example, checked without a Docker engine.

The files are parsed and held to the package they ship: every FORECASTER_* variable is a real
setting, the image installs the package alone (no torch), and the image's CMD and HEALTHCHECK are
run on this host as the same `forecaster` argv against a real PostgreSQL database. The image and
the compose stack themselves are built and run by `make container-test` (scripts/container-test.sh).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from forecaster.config import Settings, load_settings, setting_names
from forecaster.daemon.scheduler import Schedule
from tests.support import paths
from tests.support.processes import forecaster_env, forecaster_running, query_scalar, run_forecaster, wait_for

ROOT = paths.ROOT
#: Settings docker-compose.yml sets itself; every other one comes from .env.
COMPOSE_FIXED = {
    "FORECASTER_DATABASE_URL",
    "FORECASTER_DATABASE_PASSWORD",
    "FORECASTER_REPORT_DIR",
    "FORECASTER_LOG_FORMAT",
    "FORECASTER_HEARTBEAT_FILE",
    "FORECASTER_METRICS_PORT",
}
FORECASTER_SERVICES = ("daemon", "worker")


# --- Dockerfile -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ENV, ...
    arguments: str  # the rest, continuation lines joined


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions in order; comments dropped, `\\` continuations joined."""
    instructions, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def arguments_of(keyword: str) -> list[str]:
    return [instruction.arguments for instruction in dockerfile() if instruction.keyword == keyword]


def image_environment() -> dict[str, str]:
    """Every ENV of the Dockerfile (the last stage's win, as in the image)."""
    return dict(pair.split("=", 1) for arguments in arguments_of("ENV") for pair in shlex.split(arguments))


def exec_form(text: str) -> list[str]:
    argv = json.loads(text)
    assert isinstance(argv, list) and all(isinstance(word, str) for word in argv), f"not an exec form: {text}"
    return argv


def pip_installs() -> list[list[str]]:
    """The arguments after `pip install` of every RUN, in build order."""
    installs = []
    for arguments in arguments_of("RUN"):
        for command in re.split(r"&&|;", arguments):
            words = shlex.split(command)
            installs += [words[k + 2 :] for k in range(len(words) - 1) if words[k : k + 2] == ["pip", "install"]]
    return installs


PIP_OPTIONS_WITH_VALUE = {"--index-url", "-i", "--extra-index-url"}


def requirements_of(install: list[str]) -> list[str]:
    """What one `pip install` installs: its words that are neither options nor option values."""
    requirements, skip_value = [], False
    for word in install:
        if skip_value:
            skip_value = False
        elif word in PIP_OPTIONS_WITH_VALUE:
            skip_value = True
        elif not word.startswith("-"):
            requirements.append(word)
    return requirements


def option_value(install: list[str], option: str) -> str | None:
    for k, word in enumerate(install):
        if word == option and k + 1 < len(install):
            return install[k + 1]
        if word.startswith(f"{option}="):
            return word.split("=", 1)[1]
    return None


def healthcheck() -> tuple[dict[str, str], list[str]]:
    """The HEALTHCHECK's options (--name=value) and its exec-form command."""
    (arguments,) = arguments_of("HEALTHCHECK")
    options, _, command = arguments.partition("CMD ")
    return dict(option.removeprefix("--").split("=", 1) for option in options.split()), exec_form(command)


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match and duration, f"not a Docker duration: {duration!r}"
    hours, minutes, secs = (int(part or 0) for part in match.groups())
    return 3600 * hours + 60 * minutes + secs


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[^\w.-]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_the_image_is_built_on_python_3_11_slim() -> None:
    bases = [arguments.split()[0] for arguments in arguments_of("FROM")]

    assert bases and all(base == "python:3.11-slim" for base in bases), bases


def test_the_image_runs_as_a_user_without_privileges() -> None:
    users = arguments_of("USER")

    assert users, "no USER: the container would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_the_image_installs_the_package_alone_without_extras_or_torch() -> None:
    installs = pip_installs()

    assert [requirements_of(install) for install in installs] == [["."]]
    assert not {"-e", "--editable"} & set(installs[0])
    assert option_value(installs[0], "--index-url") is None


def test_torch_is_only_the_reference_extra_that_tests_and_benchmarks_need() -> None:
    project = pyproject()["project"]

    assert "torch" not in requirement_names(project["dependencies"])
    assert project["optional-dependencies"]["reference"] == ["torch==2.13.0"]


def test_the_build_context_is_only_what_the_dockerfile_copies() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [pattern for pattern in patterns if pattern and not pattern.startswith("#")]
    copied = [
        source.rstrip("/")
        for arguments in arguments_of("COPY")
        if not arguments.startswith("--from")
        for source in shlex.split(arguments)[:-1]
    ]

    assert patterns[0] == "*", "everything (.venv, .git, .env, databases) stays out unless named"
    assert set(copied) == {pattern[1:] for pattern in patterns if pattern.startswith("!")}


def test_the_image_declares_no_volume_and_writes_caches_under_tmp() -> None:
    env = image_environment()
    database = env["FORECASTER_DATABASE_URL"]

    assert not arguments_of("VOLUME"), "a VOLUME leaves an anonymous volume behind every container"
    assert database == "sqlite:////data/forecaster.db" and env["FORECASTER_REPORT_DIR"] == "/reports"
    for cache in ("NUMBA_CACHE_DIR", "MPLCONFIGDIR", "XDG_CACHE_HOME", "FORECASTER_HEARTBEAT_FILE"):
        assert env[cache].startswith("/tmp/"), cache


def test_every_forecaster_variable_of_the_image_is_a_setting() -> None:
    assert {name for name in image_environment() if name.startswith("FORECASTER_")} <= set(setting_names())


def test_the_command_is_the_daemon_and_a_command_given_to_the_container_replaces_it() -> None:
    (command,) = arguments_of("CMD")

    assert exec_form(command) == ["forecaster", "run"]
    assert not arguments_of("ENTRYPOINT"), "`docker compose run daemon forecaster report` needs no entrypoint"


def test_the_healthcheck_is_forecaster_status_and_leaves_time_for_the_first_catch_up() -> None:
    options, command = healthcheck()

    assert command == ["forecaster", "status"]
    assert seconds(options["start-period"]) >= 60
    assert seconds(options["timeout"]) < seconds(options["interval"])
    assert int(options["retries"]) >= 1


# --- docker-compose.yml and .env.example ---------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


#: A variable line of .env.example: `NAME=value`, or commented out: `# NAME=value`.
DOTENV_VARIABLE = re.compile(r"(#\s*)?([A-Z][A-Z0-9_]*)=(.*)")


def dotenv_lines() -> list[str]:
    return [line.strip() for line in (ROOT / ".env.example").read_text().splitlines()]


def dotenv_example() -> tuple[dict[str, str], set[str]]:
    """The variables .env.example sets, and those it documents (set, or commented out as `# NAME=`)."""
    values, documented = {}, set()
    for line in dotenv_lines():
        match = DOTENV_VARIABLE.fullmatch(line)
        if match:
            commented, name, value = match.groups()
            documented.add(name)
            if not commented:
                values[name] = value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'" else value
    return values, documented


COMPOSE_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::(?P<operator>[-?])(?P<argument>[^}]*))?\}")


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}`."""

    def substitute(match: re.Match[str]) -> str:
        if variables.get(match["name"]):
            return variables[match["name"]]
        assert match["operator"] != "?", f"compose stops: {match['name']} unset ({match['argument']})"
        return match["argument"] or ""

    return COMPOSE_VARIABLE.sub(substitute, value)


def test_compose_runs_postgres_the_daemon_and_workers() -> None:
    assert set(compose()["services"]) == {"postgres", "daemon", "worker"}


def test_postgres_is_the_official_16_image_with_a_healthcheck_and_a_named_volume() -> None:
    postgres = compose()["services"]["postgres"]

    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "postgres-data" in compose()["volumes"]
    assert postgres["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


@pytest.mark.parametrize("name", FORECASTER_SERVICES)
def test_forecaster_services_run_the_image_command_once_postgres_is_healthy(name: str) -> None:
    service = compose()["services"][name]

    assert service["build"] == "."
    assert "command" not in service and "entrypoint" not in service, "they run the image's `forecaster run`"
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    policy, _, attempts = service["restart"].partition(":")
    assert (policy, 1 <= int(attempts) <= 10) == ("on-failure", True), "a configuration error must not loop"


def test_the_daemon_keeps_the_image_healthcheck_about_the_job() -> None:
    assert "healthcheck" not in compose()["services"]["daemon"], "the image's `forecaster status` applies"


def test_a_worker_healthcheck_is_about_the_worker_itself() -> None:
    worker = compose()["services"]["worker"]

    assert worker["healthcheck"]["test"] == ["CMD", "forecaster", "status", "--process"]
    assert worker["environment"]["FORECASTER_HEARTBEAT_FILE"] == image_environment()["FORECASTER_HEARTBEAT_FILE"]


@pytest.mark.parametrize("name", FORECASTER_SERVICES)
def test_forecaster_services_write_reports_into_the_shared_named_volume(name: str) -> None:
    service = compose()["services"][name]

    assert f"reports:{service['environment']['FORECASTER_REPORT_DIR']}" in service["volumes"]
    assert "reports" in compose()["volumes"]


def test_one_daemon_runs_and_workers_start_only_when_scaled_up() -> None:
    services = compose()["services"]

    assert "deploy" not in services["daemon"]
    assert services["worker"]["deploy"]["replicas"] == 0


@pytest.mark.parametrize("name", FORECASTER_SERVICES)
def test_compose_passes_every_setting_from_dotenv_except_the_six_it_fixes(name: str) -> None:
    environment = compose()["services"][name]["environment"]

    assert set(environment) == set(setting_names())
    for setting in set(setting_names()) - COMPOSE_FIXED:
        assert environment[setting] == f"${{{setting}:-}}", "unset in .env: the package's default"
    assert environment["FORECASTER_DATABASE_URL"] == "postgresql+psycopg://forecaster@postgres:5432/forecaster"
    assert environment["FORECASTER_DATABASE_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert (environment["FORECASTER_REPORT_DIR"], environment["FORECASTER_LOG_FORMAT"]) == ("/reports", "json")


def test_dotenv_example_documents_every_setting_and_postgres_password_and_no_more() -> None:
    values, documented = dotenv_example()

    assert documented == set(setting_names()) | {"POSTGRES_PASSWORD"}
    assert values["POSTGRES_PASSWORD"] == "change-me"


def test_dotenv_example_gives_each_variable_a_comment_line() -> None:
    lines = dotenv_lines()
    undocumented = [
        line
        for previous, line in zip(["", *lines], lines, strict=False)
        if DOTENV_VARIABLE.fullmatch(line)
        and not (previous.startswith("#") and not DOTENV_VARIABLE.fullmatch(previous))
    ]

    assert not undocumented


def test_every_variable_compose_reads_is_in_dotenv_example() -> None:
    _, documented = dotenv_example()
    read = {match["name"] for match in COMPOSE_VARIABLE.finditer((ROOT / "docker-compose.yml").read_text())}

    assert read <= documented


def test_the_example_values_inside_compose_are_the_package_defaults_but_for_what_compose_fixes(monkeypatch) -> None:
    values, _ = dotenv_example()
    for name in [name for name in os.environ if name.startswith("FORECASTER_")]:
        monkeypatch.delenv(name)
    for name, value in compose()["services"]["daemon"]["environment"].items():
        monkeypatch.setenv(name, interpolate(str(value), values))

    settings = load_settings()

    Schedule.from_settings(settings)  # both schedules parse in the zone
    assert settings.database == "postgresql+psycopg://forecaster:change-me@postgres:5432/forecaster"
    assert (settings.report_dir, settings.log_format) == ("/reports", "json")
    assert not settings.config_file
    compose_fixed = {"database_url", "database_password", "report_dir", "log_format", "heartbeat_file", "metrics_port"}
    assert {name: value for name, value in settings if name not in compose_fixed} == {
        name: value for name, value in Settings() if name not in compose_fixed
    }


def docker_compose_missing() -> str | None:
    """Why `docker compose` cannot check the file here, or None when it can."""
    if shutil.which("docker") is None:
        return "no docker CLI"
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        return "the docker CLI has no compose plugin"
    return None


DOCKER_COMPOSE_MISSING = docker_compose_missing()


@pytest.mark.skipif(DOCKER_COMPOSE_MISSING is not None, reason=f"docker compose config: {DOCKER_COMPOSE_MISSING}")
def test_docker_compose_accepts_the_file_with_the_example_env() -> None:
    result = subprocess.run(
        ["docker", "compose", "--env-file", ".env.example", "-f", "docker-compose.yml", "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr


# --- the image's commands, run on this host ---------------------------------------------------


@pytest.mark.postgres
def test_the_image_command_forecasts_stops_on_sigterm_and_then_the_healthcheck_passes(
    postgres_url: str, tmp_path: Path
) -> None:
    (command,) = arguments_of("CMD")
    run_argv, status_argv = exec_form(command), healthcheck()[1]
    assert pyproject()["project"]["scripts"]["forecaster"] == "forecaster.cli:main"  # what `-m forecaster` runs
    assert run_argv[0] == status_argv[0] == "forecaster"
    env = forecaster_env(postgres_url, source="synthetic", tickers="AAA,BBB", report_dir=str(tmp_path / "reports"))
    log_path = tmp_path / "daemon.log"

    with forecaster_running(*run_argv[1:], env=env, log_path=log_path) as daemon:
        try:
            wait_for(
                lambda: (query_scalar(postgres_url, "SELECT count(*) FROM predictions") or 0) >= 2,
                90,
                "the first forecasts",
            )
            wait_for(
                lambda: query_scalar(postgres_url, "SELECT count(*) FROM runs WHERE status = 'running'") == 0,
                30,
                "the run to end",
            )
            daemon.send_signal(signal.SIGTERM)
            exit_code = daemon.wait(timeout=30)
        except (AssertionError, subprocess.TimeoutExpired) as error:
            raise AssertionError(f"{error}; the daemon's log ends:\n{log_path.read_text()[-3000:]}") from None
    assert exit_code == 0, log_path.read_text()[-3000:]

    health = run_forecaster(*status_argv[1:], env=env)

    assert health.returncode == 0, health.stdout + health.stderr
