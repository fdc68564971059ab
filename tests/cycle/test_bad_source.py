"""A source that cannot answer never costs the run record: a price file that goes bad under a running
job fails every ticker at the fetch with one line naming the file and the line (however many
fetch batches the watch list takes), and the cycle is recorded. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

from forecaster.calendar import NYSE, trading_calendar
from forecaster.context import CycleContext
from forecaster.model.presets import PRESETS
from forecaster.prices import ingest
from forecaster.prices.sources.csv_file import CsvSource
from forecaster.prices.sources.synthetic import SyntheticSource
from forecaster.store import runs as run_store
from forecaster.walks import catch_up_now

MON, TUE = date(2024, 3, 4), date(2024, 3, 5)


def _write(path, through: date) -> None:
    market = trading_calendar(NYSE)
    prices = SyntheticSource(seed=4).fetch(["AAA", "BBB"], market.sessions_back(through, 300), through).prices
    prices.select(prices["session_date"].alias("date"), "ticker", "close").write_csv(path)


def test_a_price_file_gone_bad_under_the_job_is_one_failure_line_per_ticker_and_a_recorded_run(
    migrated_engine, tmp_path, caplog, monkeypatch
):
    monkeypatch.setattr(ingest, "FETCH_BATCH_TICKERS", 1)  # each ticker its own fetch: still one line
    path = tmp_path / "prices.csv"
    _write(path, MON)
    clock = [datetime(2024, 3, 4, 23, 0, tzinfo=UTC)]
    context = CycleContext(
        engine=migrated_engine, source=CsvSource(path), tickers=("AAA", "BBB"), preset=PRESETS["default"]
    )
    context.clock = lambda: clock[0]
    catch_up_now(context)
    _write(path, TUE)
    lines = path.read_text().splitlines()
    lines[-1] = lines[-1].rsplit(",", 1)[0] + ",nan"  # a close that is not a price, written under the job
    path.write_text("\n".join(lines) + "\n")
    clock[0] = datetime(2024, 3, 5, 23, 0, tzinfo=UTC)

    (outcome,) = catch_up_now(context)

    with migrated_engine.connect() as connection:
        failures = run_store.run_failures_of(outcome.run_id, connection=connection)
    assert (outcome.as_of, outcome.status) == (TUE, "failed")
    assert {f.ticker for f in failures} == {"AAA", "BBB"} and {f.stage for f in failures} == {"fetch"}
    assert all(str(path) in f.reason and f"line {len(lines)}" in f.reason for f in failures), failures
    assert not [r for r in caplog.records if r.exc_info], "no traceback"
    said = [r for r in caplog.records if r.getMessage().startswith("price source")]
    assert len(said) == 1 and "failed for 2 ticker(s)" in said[0].getMessage(), said
