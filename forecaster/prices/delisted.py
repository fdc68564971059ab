"""Tickers the price source has had no data for over many sessions in a row: probably delisted.

Read from what the runs left: a ticker whose latest failure at the fetch is of the "no data"
kind (forecaster.prices.sources.failures: the download worked, nothing came for this ticker) and
whose latest stored close, or first such failure when it has none, lies at least `after` sessions
of its own calendar before that failure. A rate limit or a network failure hits every ticker
alike and says nothing about one; a ticker that returns rows again is no longer listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from forecaster.calendar import trading_calendar
from forecaster.prices.sources.failures import failure_kind
from forecaster.store.membership import one_of
from forecaster.store.schema import prices, run_failures, runs


@dataclass(frozen=True)
class ProbablyDelisted:
    ticker: str
    calendar: str
    last_close: date | None  # the latest session with a stored close; None: never had one
    sessions_without_data: int  # sessions of its calendar since then, through the latest failure
    reason: str  # the latest failure's reason

    @property
    def line(self) -> str:
        since = f"since {self.last_close}" if self.last_close else "and no close ever"
        return (
            f"probably delisted: {self.ticker} ({self.calendar}): no data for {self.sessions_without_data} "
            f"sessions {since} ({self.reason})"
        )


def probably_delisted(calendars: Mapping[str, str], *, connection: sa.Connection, after: int) -> list[ProbablyDelisted]:
    """Those of `calendars` ({ticker: its calendar}) with no data for `after` sessions in a row, by ticker."""
    if not calendars:
        return []
    tickers = list(calendars)
    f, r, p = run_failures.c, runs.c, prices.c
    newest_first = sa.func.row_number().over(partition_by=f.ticker, order_by=(r.as_of.desc(), r.id.desc()))
    failures = (
        sa.select(f.ticker, f.reason, r.as_of, newest_first.label("rank"))
        .join(runs, r.id == f.run_id)
        .where(one_of(f.ticker, tickers), f.stage == "fetch", r.as_of.is_not(None))
        .subquery()
    )
    latest = dict(
        (ticker, (reason, as_of))
        for ticker, reason, as_of in connection.execute(
            sa.select(failures.c.ticker, failures.c.reason, failures.c.as_of).where(failures.c.rank == 1)
        )
    )
    silent = [t for t, (reason, _) in latest.items() if failure_kind(reason) == "no_data"]
    if not silent:
        return []
    closes = dict(
        connection.execute(
            sa.select(p.ticker, sa.func.max(p.session_date)).where(one_of(p.ticker, silent)).group_by(p.ticker)
        ).all()
    )
    first_failures = dict(
        connection.execute(
            sa.select(failures.c.ticker, sa.func.min(failures.c.as_of))
            .where(one_of(failures.c.ticker, [t for t in silent if t not in closes]))
            .group_by(failures.c.ticker)
        ).all()
    )
    found = []
    for ticker in sorted(silent):
        reason, failed_on = latest[ticker]
        market = trading_calendar(calendars[ticker])
        last_close = closes.get(ticker)
        since = market.next_session(last_close) if last_close else first_failures[ticker]
        sessions = market.count_sessions(since, failed_on) if since <= failed_on else 0
        if sessions >= after:
            found.append(ProbablyDelisted(ticker, calendars[ticker], last_close, sessions, reason))
    return found
