"""How a source's failure reasons start, and what kind of failure each is.

Kept apart from the Yahoo adapter (which imports pandas and yfinance) so that `status` and the
report can tell a rate limit or a network failure, which hit every ticker, from a ticker the
source has no data for (delisted or renamed), without importing either.
"""

from __future__ import annotations

from typing import Literal

#: How each failure reason starts (the rest, after ": ", is the detail).
RATE_LIMITED = "rate limited"
NETWORK = "network failure"
NO_DATA = "no data returned"
NO_ROWS = "no rows (unknown or delisted ticker?)"
NOT_RETURNED = "not in the downloaded data"
DOWNLOAD_FAILED = "download failed"

FailureKind = Literal["rate_limited", "network", "no_data", "other"]


def failure_kind(reason: str) -> FailureKind:
    """What kind of failure a reason is: "rate_limited", "network", "no_data" (the download
    worked, but nothing came for this ticker) or "other"."""
    if reason.startswith(RATE_LIMITED):
        return "rate_limited"
    if reason.startswith(NETWORK):
        return "network"
    if reason.startswith((NO_DATA, NO_ROWS, NOT_RETURNED)):
        return "no_data"
    return "other"
