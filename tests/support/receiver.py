"""A local HTTP receiver for apprise's `json://` notifications: what arrived, and chosen answers."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.support.processes import wait_for


@dataclass(frozen=True)
class Received:
    """One notification as apprise's json:// posts it."""

    path: str
    title: str
    message: str
    type: str  # info, success, warning or failure
    attachments: dict[str, bytes]  # file name -> content
    authorization: str | None


class Receiver:
    """Records each POST in `received` as it arrives, then answers it with the next of `statuses`
    (the last one from then on) and counts it in `answered`. While `hold` is clear, requests wait
    unanswered (a slow target)."""

    def __init__(self, statuses: Sequence[int] = (200,)) -> None:
        self.statuses = list(statuses)
        self.received: list[Received] = []
        self.answered = 0
        self.hold = threading.Event()
        self.hold.set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    receiver.received.append(_received(self.path, payload, self.headers.get("Authorization")))
                    status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                receiver.hold.wait()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver._lock:
                    receiver.answered += 1

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def url(self, path: str = "hook", *, login: str = "") -> str:
        """The apprise URL of this receiver; `login` is "user:password" to send with."""
        return f"json://{login + '@' if login else ''}127.0.0.1:{self.port}/{path}"

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        """The first `count` notifications, once that many have arrived."""
        wait_for(lambda: len(self.received) >= count, timeout, f"{count} notification(s) at the receiver")
        with self._lock:
            return self.received[:count]


def _received(path: str, payload: dict[str, Any], authorization: str | None) -> Received:
    return Received(
        path=path,
        title=payload["title"],
        message=payload["message"],
        type=payload["type"],
        attachments={a["filename"]: base64.b64decode(a["base64"]) for a in payload["attachments"]},
        authorization=authorization,
    )


@contextmanager
def receiving(statuses: Sequence[int] = (200,)) -> Iterator[Receiver]:
    """A Receiver serving from a thread of its own on a free port of 127.0.0.1, for the block."""
    receiver = Receiver(statuses)
    thread = threading.Thread(target=receiver.server.serve_forever, name="receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.hold.set()
        receiver.server.shutdown()
        receiver.server.server_close()
        thread.join()
