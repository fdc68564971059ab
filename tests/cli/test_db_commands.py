"""`db size` says what each table takes; `db prune` deletes the states and loss curves beyond those kept, nothing else.

Real processes on a real SQLite file and PostgreSQL: a backfill that keeps everything, then
the commands run with the default retention. (That a running daemon or backfill refuses
`db prune` is tests/daemon/test_one_writer.py's.)
"""

from __future__ import annotations

from tests.support.processes import forecaster_env, query_scalar, run_forecaster

TICKERS = "AAA,BBB"
SESSIONS = 4  # 2024-03-04 .. 03-07


def _counts(url: str) -> dict[str, int]:
    return {
        table: query_scalar(url, f"SELECT count(*) FROM {table}")
        for table in ("predictions", "model_states", "training_losses", "prices", "runs")
    }


def _size_table(stdout: str) -> dict[str, int]:
    """{table: rows} from `db size`'s lines."""
    rows = {}
    for line in stdout.splitlines()[1:]:
        name, count, *_ = line.split()
        if name != "total":
            rows[name] = int(count)
    return rows


def test_prune_keeps_each_tickers_latest_states_and_curves_and_every_forecast(database_url):
    keep_everything = forecaster_env(
        database_url, source="synthetic", tickers=TICKERS, keep_states="100", keep_loss_curves="100"
    )
    backfill = run_forecaster("backfill", "--start", "2024-03-04", "--end", "2024-03-07", env=keep_everything)
    assert backfill.returncode == 0, backfill.stderr
    before = _counts(database_url)
    assert before["model_states"] == before["predictions"] == 2 * SESSIONS

    defaults = forecaster_env(database_url, keep_states="2", keep_loss_curves="3")
    size = run_forecaster("db", "size", env=defaults)
    assert size.returncode == 0, size.stderr
    assert {t: _size_table(size.stdout)[t] for t in before} == before
    assert "bytes per forecast (ticker-session)" in size.stdout.splitlines()[-1]

    pruned = run_forecaster("db", "prune", env=defaults)
    assert pruned.returncode == 0, pruned.stderr
    after = _counts(database_url)
    # Each ticker keeps 2 of its 4 states and 3 of its 4 curves: its first fit's 109 rows go.
    assert after == before | {"model_states": 2 * 2, "training_losses": before["training_losses"] - 2 * 109}
    assert pruned.stdout.startswith(f"deleted 4 model states and {2 * 109} loss rows;"), pruned.stdout
    assert query_scalar(database_url, "SELECT count(*) FROM predictions WHERE fit_epochs IS NULL") == 0

    again = run_forecaster("db", "prune", env=defaults)
    assert again.stdout.startswith("deleted 0 model states and 0 loss rows;"), again.stdout
