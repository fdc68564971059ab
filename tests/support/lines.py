"""What a command printed, line by line, whatever the log format."""

from __future__ import annotations

import json


def messages(printed: str) -> list[str]:
    """Each line printed; a JSON log line (FORECASTER_LOG_FORMAT=json) as its message."""
    lines = []
    for line in printed.splitlines():
        try:
            lines.append(json.loads(line)["message"])
        except (ValueError, KeyError, TypeError):
            lines.append(line)
    return lines
