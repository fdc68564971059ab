"""Whatever the input, a command succeeds or fails with one line: never a traceback, never a partial write.

Hypothesis generates price files (layouts, column names, dates, numbers, encodings, delimiters)
for `forecaster fit --prices FILE`, and settings (database URLs, schedules, tickers, numbers,
sources, presets) for `db upgrade`, `run --once`, `backfill` and `status`, run in-process
through forecaster.cli.main. A command either exits 0, or exits non-zero with no traceback;
a user error (exit 2) prints exactly one line and leaves the database it was pointed at
exactly as it was (every table, runs included).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import sqlite3
import tempfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from forecaster.calendar import NYSE, trading_calendar
from forecaster.cli import main
from tests.support.lines import messages

NYSE_CALENDAR = trading_calendar(NYSE)

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


pytestmark = pytest.mark.usefixtures("restored_logging")


def _invoke(argv: list[str], env: dict[str, str], capsys) -> tuple[int, str, str]:
    """Runs the command with exactly these FORECASTER_* settings, in an empty working directory
    (an empty URL means the default, sqlite:///forecaster.db there); a traceback fails the test."""
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as workdir:
        patch.chdir(workdir)
        for name in [n for n in os.environ if n.startswith("FORECASTER_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse: a usage error, which is one line too
            code = exit_.code
        except Exception as error:
            out = capsys.readouterr()
            raise AssertionError(
                f"forecaster {' '.join(argv)} raised {error!r}\nstderr:\n{out.err}\nsettings: {env}"
            ) from error
    out = capsys.readouterr()
    assert "Traceback" not in out.err, out.err
    return code, out.out, out.err


def _assert_one_line_error(command: str, code: int, err: str) -> None:
    assert code != 0
    errors = [line for line in messages(err) if line.startswith(f"forecaster {command}")]
    assert len(errors) == 1, err
    assert any(kind in errors[0] for kind in (": error: ", ": database error: ", ": database unavailable: ")), errors[0]


# --- price files for `fit` -----------------------------------------------------------------

SESSIONS = NYSE_CALENDAR.sessions_between(date(2023, 1, 3), date(2023, 3, 31))
COLUMN_NAMES = [
    "Date",
    "date",
    "Close",
    "close",
    "Adj Close",
    "adj_close",
    "Open",
    "High",
    "Low",
    "Volume",
    "ticker",
    "Ticker",
    "Symbol",
    "Price",
    "Dividends",
    "",
    " Close ",
    "\ufeffDate",
    "Datum",
    "session date",
    "CLOSE",
]
ODD_DATES = [
    "",
    "2024-13-01",
    "2023-02-29",
    "02/01/2024",
    "NaT",
    "0001-01-01",
    "9999-12-31",
    "2023-01-03T00:00:00Z",
    "2023-01-03 00:00:00-05:00",
    "20230103",
    "2023-1-3",
]
ODD_NUMBERS = [
    "",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-0",
    "0",
    "1e309",
    "1,5",
    " 12 ",
    "1_000",
    "0x10",
    "-5",
    "$10",
    "1e-320",
]
text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"), max_size=10
)  # an environment variable cannot hold NUL
numbers = st.one_of(
    st.floats(min_value=0.01, max_value=1e4).map(repr), st.floats().map(repr), st.sampled_from(ODD_NUMBERS), text
)
dates = st.one_of(st.sampled_from(SESSIONS).map(str), st.dates().map(str), st.sampled_from(ODD_DATES), text)


@st.composite
def price_files(draw) -> bytes:
    """A CSV as bytes: usually almost a valid file (so success paths run too), sometimes anything."""
    if draw(st.integers(0, 2)) > 0:  # a valid yfinance or long file with a few cells spoilt
        long = draw(st.booleans())
        header = ["date", "ticker", "close"] if long else ["Date", "Close", "Volume"]
        n = draw(st.sampled_from([0, 1, 4, 5, 6, 7, 20, 40, 40, 40]))
        rows = [
            [str(d), "SPY", repr(100.0 + k)] if long else [str(d), repr(100.0 + k), "1000"]
            for k, d in enumerate(SESSIONS[:n])
        ]
        for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
            if rows:
                row = draw(st.sampled_from(rows))
                column = draw(st.integers(0, len(header) - 1))
                row[column] = draw(dates if header[column].lower() == "date" else numbers)
        if draw(st.integers(0, 5)) == 0 and rows:
            rows.append(list(draw(st.sampled_from(rows))))  # a repeated line
    else:
        header = draw(st.lists(st.sampled_from(COLUMN_NAMES) | text, min_size=1, max_size=5))
        rows = draw(
            st.lists(st.lists(st.one_of(dates, numbers, text), min_size=len(header), max_size=len(header)), max_size=12)
        )
    delimiter = draw(st.sampled_from([",", ",", ",", ",", ",", ";", "\t"]))
    buffer = io.StringIO()
    csv.writer(
        buffer, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\n", "\n", "\r\n", "\r"]))
    ).writerows([header, *rows])
    content = buffer.getvalue()
    if draw(st.integers(0, 5)) == 0:
        content = content[: draw(st.integers(0, len(content)))]  # a file cut short
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]))
    data = content.encode(encoding, errors="replace")
    if draw(st.integers(0, 9)) == 0:
        data = draw(st.binary(max_size=200))  # not text at all
    return data


@FUZZ
@given(content=price_files())
def test_fit_on_any_price_file_succeeds_or_fails_with_one_line(content, capsys):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "prices.csv"
        path.write_bytes(content)

        code, out, err = _invoke(["fit", "--prices", str(path), "--epochs", "2"], {}, capsys)
    event(f"exit {code}")  # --hypothesis-show-statistics shows how many succeeded

    if code == 0:
        assert "epochs" in out
    else:
        _assert_one_line_error("fit", code, err)


# --- settings for the database commands ------------------------------------------------------

AS_OF = "2024-03-04"
ODD_URLS = [
    "",
    "sqlite://",
    "sqlite:///",
    "sqlite:////no/such/dir/x.db",
    "sqlite:///:memory:",
    "postgresql://",
    "postgresql://u:p@127.0.0.1:1/x",
    "postgres://127.0.0.1:1/x?sslmode=bogus",
    "mysql://x/y",
    "nonsense",
    "sqlite:///DIRECTORY",
    "sqlite:///DIRECTORY/f.db?mode=ro&uri=true",
    "postgresql+nodriver://h/d",
]
SCHEDULES = [
    "30 18 * * 1-5",
    "* * * * *",
    "61 18 * * 1-5",
    "0 0 31 2 *",
    "*/0 * * * *",
    "0 0 * * 8",
    "0 0 * * 7",
    "@daily",
    "0 0 * * mon-fri",
    "",
    "1 2 3",
    "0 0 * * 5-1",
]
SYMBOLS = ["AAA", "spy", "BRK.B", "^GSPC", "ÄÖÜ", "A" * 40, "DROP TABLE prices", "'", "a,b", " ", "X\tY"]
SOURCES = ["synthetic", "synthetic:7", "synthetic:-1", "synthetic:x", "csv:/no/such.csv", "csv:", "SYNTHETIC", "ftp:x"]
COUNTS = st.one_of(
    st.integers(-3, 400).map(str),
    st.sampled_from(["", "1e3", "0x10", " 5 ", "2.5", "-0", "1e20", "1" + "0" * 20]),
    text,
)
SECONDS = st.one_of(
    st.floats(0, 3).map(repr), st.sampled_from(["nan", "inf", "-1", "1e308", "", "0", "1" + "0" * 20]), text
)
COMMANDS = [
    ["db", "upgrade"],
    ["run", "--once", "--as-of", AS_OF],
    ["run", "--once", "--as-of", "2024-03-09"],  # a Saturday
    ["backfill", "--start", "2024-02-28", "--end", AS_OF],
    ["backfill", "--start", AS_OF, "--end", "2024-02-28"],
    ["status"],
]


def _not_yahoo(spec: str) -> bool:
    """No test reaches the network: not "yahoo", nor "" (an empty setting means the default, yahoo)."""
    return spec != "" and spec.strip().lower().partition(":")[0].strip() != "yahoo"


@st.composite
def odd_settings(draw) -> dict[str, str]:
    """FORECASTER_* values; each absent, sane, or odd. "DB" stands for a copy of a populated database."""
    chosen = {
        "DATABASE_URL": st.one_of(st.just("DB"), st.just("DB"), st.sampled_from(ODD_URLS), text),
        "SCHEDULE": st.one_of(st.sampled_from(SCHEDULES), text),
        "TIMEZONE": st.sampled_from(["America/New_York", "UTC", "Mars/Olympus", "", "+05:00"]),
        "TICKERS": st.one_of(st.lists(st.sampled_from(SYMBOLS), max_size=3).map(",".join), text),
        "SOURCE": st.one_of(st.sampled_from(SOURCES), text.filter(_not_yahoo)),
        "PRESET": st.sampled_from(["default", "seed", "", "nope", "SEED"]),
        "HISTORY_SESSIONS": COUNTS,
        "CLAIM_SIZE": COUNTS,
        "LEASE_SECONDS": COUNTS,
        "MISFIRE_GRACE_SECONDS": COUNTS,
        "FETCH_RETRIES": COUNTS,
        "FETCH_BACKOFF_SECONDS": SECONDS,
        "LOG_FORMAT": st.sampled_from(["human", "json", "xml", ""]),
    }
    names = draw(st.lists(st.sampled_from(sorted(chosen)), unique=True, max_size=4))
    values = {name: draw(chosen[name]) for name in names}
    # Keep the examples fast and offline: a few tickers, synthetic prices unless the source itself is the test.
    values.setdefault("SOURCE", "synthetic")
    values.setdefault("TICKERS", "AAA,BBB")
    values.setdefault("DATABASE_URL", "DB")
    return {f"FORECASTER_{name}": value for name, value in values.items()}


@pytest.fixture(scope="module")
def populated_database(tmp_path_factory) -> Path:
    """A SQLite file with a backfill of two tickers over three sessions in it."""
    path = tmp_path_factory.mktemp("populated") / "forecaster.db"
    env = {
        "FORECASTER_DATABASE_URL": f"sqlite:///{path}",
        "FORECASTER_SOURCE": "synthetic",
        "FORECASTER_TICKERS": "AAA,BBB",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        assert main(["backfill", "--start", "2024-02-27", "--end", "2024-02-29"]) == 0
    return path


def _everything(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table of a SQLite file (read through sqlite3, checkpointing nothing)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return {table: sorted(connection.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr) for table in tables}
    finally:
        connection.close()


@FUZZ
@given(env=odd_settings(), argv=st.sampled_from(COMMANDS))
def test_a_command_with_odd_settings_succeeds_or_fails_with_one_line_and_writes_nothing(
    env, argv, populated_database, capsys
):
    with tempfile.TemporaryDirectory() as directory:
        database = Path(directory) / "forecaster.db"
        shutil.copy(populated_database, database)
        url = env["FORECASTER_DATABASE_URL"]
        env["FORECASTER_DATABASE_URL"] = f"sqlite:///{database}" if url == "DB" else url.replace("DIRECTORY", directory)
        env["FORECASTER_REPORT_DIR"] = str(Path(directory) / "reports")
        before = _everything(database)

        code, _, err = _invoke(argv, env, capsys)
        event(f"{argv[0]}: exit {code}")

        assert code in (0, 1, 2), (code, err)
        if code == 2:
            _assert_one_line_error(argv[0], code, err)
            assert _everything(database) == before, "a command that refused its input changed the database"
