"""Rows for the report tests, inserted the way the daily cycle would, and ways to read a report back."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from forecaster.store.schema import predictions, prices, run_failures, runs, training_losses

PRESET = "default"
START = date(2024, 1, 1)

#: (lower_80, upper_80, lower_95, upper_95) of a forecast.
Bounds = tuple[float, float, float, float]


def day(n: int) -> date:
    """Session n of the test calendar (plain days: the report does not care about weekends)."""
    return START + timedelta(days=n)


def at(n: int, seconds: float = 0) -> datetime:
    """After the close of session n, UTC."""
    return datetime(day(n).year, day(n).month, day(n).day, 22, 30, tzinfo=UTC) + timedelta(seconds=seconds)


def around(predicted: float, half_80: float, half_95: float) -> Bounds:
    """Bounds symmetric around the forecast."""
    return predicted - half_80, predicted + half_80, predicted - half_95, predicted + half_95


class Tables:
    """Inserts rows with SQLAlchemy Core."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def run(
        self,
        n: int,
        *,
        status: str = "ok",
        ok: int = 0,
        failed: int = 0,
        skipped: int = 0,
        seconds: float | None = 12.5,
        error: str | None = None,
        preset: str | None = PRESET,
        kind: str = "daily",
        ran_after: int | None = None,
        waiting: int = 0,
    ) -> int:
        """A run for session n, started after the close of session `ran_after` (default n)."""
        started = at(n if ran_after is None else ran_after)
        finished = None if seconds is None else started + timedelta(seconds=seconds)
        with self.engine.begin() as c:
            return c.execute(
                runs.insert().values(
                    kind=kind,
                    as_of=day(n),
                    preset=preset,
                    started_at=started,
                    finished_at=finished,
                    status=status,
                    tickers_ok=ok,
                    tickers_failed=failed,
                    tickers_skipped=skipped,
                    tickers_waiting=waiting,
                    error=error,
                    host="test",
                    calendar="XNYS",
                )
            ).inserted_primary_key[0]

    def failure(self, run_id: int, ticker: str, stage: str, reason: str) -> None:
        with self.engine.begin() as c:
            c.execute(run_failures.insert().values(run_id=run_id, ticker=ticker, stage=stage, reason=reason))

    def closes(self, ticker: str, closes: dict[int, float]) -> None:
        with self.engine.begin() as c:
            c.execute(
                prices.insert(),
                [
                    {"ticker": ticker, "session_date": day(n), "close": v, "source": "test", "fetched_at": at(n)}
                    for n, v in closes.items()
                ],
            )

    def forecast(
        self, ticker: str, n: int, predicted: float, last_close: float, run_id: int, bounds: Bounds | None = None
    ) -> None:
        """The forecast made after the close of session n for session n + 1."""
        lower_80, upper_80, lower_95, upper_95 = bounds or (None, None, None, None)
        with self.engine.begin() as c:
            c.execute(
                predictions.insert().values(
                    ticker=ticker,
                    preset=PRESET,
                    as_of=day(n),
                    target_session=day(n + 1),
                    predicted_close=predicted,
                    last_close=last_close,
                    run_id=run_id,
                    created_at=at(n, 5),
                    lower_80=lower_80,
                    upper_80=upper_80,
                    lower_95=lower_95,
                    upper_95=upper_95,
                    interval_method=None if bounds is None else "test",
                )
            )

    def losses(self, ticker: str, n: int, losses: list[float], run_id: int) -> None:
        """The loss curve of the fit through session n, and its summary on that fit's forecast (made before)."""
        with self.engine.begin() as c:
            p = predictions.c
            summarised = c.execute(
                predictions.update()
                .where(p.ticker == ticker, p.preset == PRESET, p.as_of == day(n))
                .values(fit_epochs=len(losses), fit_first_loss=losses[0], fit_last_loss=losses[-1])
            ).rowcount
            assert summarised == 1, f"no forecast of {ticker} after session {n} to carry its fit's losses"
            c.execute(
                training_losses.insert(),
                [
                    {
                        "ticker": ticker,
                        "preset": PRESET,
                        "trained_through": day(n),
                        "epoch": e,
                        "loss": v,
                        "run_id": run_id,
                    }
                    for e, v in enumerate(losses, start=1)
                ],
            )

    def history(self, ticker: str, closes: list[float], predicted: list[float], run_id: int) -> None:
        """Closes of sessions 0..k-1 and forecasts after sessions 0..k-1 (the last one not yet realised)."""
        self.closes(ticker, dict(enumerate(closes)))
        for n, (close, forecast) in enumerate(zip(closes, predicted, strict=True)):
            self.forecast(ticker, n, forecast, close, run_id)


def table_row(markdown: str, section: str, ticker: str) -> list[str]:
    """The cells of `ticker`'s row in the table under the heading `section`."""
    body = markdown.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in body.splitlines() if line.startswith(f"| {ticker} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def table_cell(markdown: str, section: str, ticker: str, header: str) -> str:
    """The cell of `ticker`'s row in the column headed `header` of the table under the heading `section`."""
    body = markdown.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    headers = next(line for line in body.splitlines() if line.startswith("| "))
    return table_row(markdown, section, ticker)[[h.strip() for h in headers.strip("|").split("|")].index(header)]


def table_column(markdown: str, section: str, index: int = 0) -> list[str]:
    """One column of the table under the heading `section`, header and separator left out."""
    body = markdown.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("| ")][1:]
    return [row.strip("|").split("|")[index].strip() for row in rows]


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text().splitlines()))
