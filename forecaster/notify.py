"""Notifications through apprise, one URL per target (e-mail, Slack, Teams, Telegram, ntfy, a
webhook...): the daemon's daily briefing and its alerts.

Sending never holds up the caller: each target has a queue and a thread of its own, so a slow or
dead target delays neither a cycle nor the other targets. A notification a target does not take
is tried again with backoff (forecaster.retries), then said once, as a warning naming the target
in apprise's privacy form (`json://user:****@host/path`: secrets hidden) with apprise's reason;
it is never raised. Apprise's own log lines stay out of the log (forecaster.logs), since some quote
a URL whole.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import apprise

from forecaster.errors import UserError, one_line
from forecaster.logs import register_url_password
from forecaster.retries import Backoff, StopRequested, with_backoff

log = logging.getLogger(__name__)

#: Three attempts over about a minute: waits of 20 s, then 40 s.
SEND_BACKOFF = Backoff(retries=2, first_delay=20.0)
#: How long closing waits for what is queued to go out (no more retries by then).
CLOSE_SECONDS = 10.0
#: The titles of an alert, and of the line that says a problem alerted is over.
ALERT_TITLE = "forecaster alert"
RESOLVED_TITLE = "forecaster: resolved"
#: The setting the URLs come from, named when one is refused.
SETTING = "FORECASTER_NOTIFY_URLS"
_URL_PARTS = re.compile(r"[/:@?&=#,;\s]+")
_SHORTEST_SECRET = 3


@dataclass(frozen=True)
class _Notification:
    title: str
    body: str
    notify_type: apprise.NotifyType
    body_format: apprise.NotifyFormat = apprise.NotifyFormat.TEXT
    attachment: Path | None = None


class _NotSent(Exception):
    """A target did not take a notification; the message is apprise's reason."""


class _Target:
    """One URL: its apprise object, its queue and the thread that sends what is queued, in order."""

    def __init__(self, url: str, number: int, count: int, backoff: Backoff, closing: threading.Event) -> None:
        service = apprise.Apprise.instantiate(url)
        if service is None:
            scheme = f"{url.split('://')[0]}://***" if "://" in url else "***"
            raise UserError(
                f"{SETTING}: URL {number} of {count} ({scheme}) is not one apprise can send to: an unknown service, "
                "or a part missing or malformed (https://appriseit.com/services/)"
            )
        register_url_password(url)  # whatever later quotes it, its password never shows
        shown: str = service.url(privacy=True)
        self.name = shown.split("?")[0]  # without the options apprise spells out
        # The parts of the URL its privacy form leaves out (tokens, passwords): hidden in apprise's reasons too.
        self._secrets = sorted(
            {part for part in _URL_PARTS.split(url) if len(part) >= _SHORTEST_SECRET and part not in shown},
            key=len,
            reverse=True,
        )
        self._apprise = apprise.Apprise(service)
        self._backoff, self._closing = backoff, closing
        self.queue: queue.Queue[_Notification | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name=f"notify {self.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (notification := self.queue.get()) is not None:
            self._deliver(notification)

    def _deliver(self, notification: _Notification) -> None:
        attempts = self._backoff.retries + 1

        def retrying(error: BaseException, retry: int, seconds: float) -> None:
            log.info(
                "notification %r to %s not sent (%s); attempt %d of %d in %.0f s",
                notification.title,
                self.name,
                error,
                retry + 1,
                attempts,
                seconds,
            )

        try:
            for attempt in with_backoff(self._backoff, stop=self._closing, retry_on=_NotSent, before_wait=retrying):
                with attempt:
                    self._send(notification)
        except _NotSent as error:
            log.warning(
                "notification %r to %s not sent after %d attempt(s): %s",
                notification.title,
                self.name,
                attempts,
                error,
                extra={"event": "notification_failed", "target": self.name},
            )
        except StopRequested:
            log.warning(
                "notification %r to %s not sent: the daemon stopped before it could be tried again",
                notification.title,
                self.name,
                extra={"event": "notification_failed", "target": self.name},
            )

    def _send(self, notification: _Notification) -> None:
        try:
            result = self._apprise.notify(
                body=notification.body,
                title=notification.title,
                notify_type=notification.notify_type,
                body_format=notification.body_format,
                attach=None if notification.attachment is None else str(notification.attachment),
            )
        except Exception as error:  # a notification must never stop the daemon, whatever apprise raises
            raise _NotSent(self._hidden(one_line(error))) from None
        if not result:
            said = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR", "CRITICAL")]
            raise _NotSent(self._hidden(said[-1] if said else f"apprise: {result.status.name.lower()}"))

    def _hidden(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class Notifier:
    """Sends each notification to every target of `urls` from the targets' threads; with no URLs it
    does nothing. A URL apprise cannot send to is a UserError naming FORECASTER_NOTIFY_URLS and the
    URL's scheme only (the rest may be a secret). `backoff` spaces the attempts of a notification."""

    def __init__(self, urls: Sequence[str], *, backoff: Backoff = SEND_BACKOFF) -> None:
        self._closing = threading.Event()
        self._targets: list[_Target] = []
        try:
            for number, url in enumerate(urls, start=1):
                self._targets.append(_Target(url, number, len(urls), backoff, self._closing))
        except UserError:
            self.close()
            raise
        if self._targets:
            log.info("notifications to %s", ", ".join(self.targets))

    @property
    def targets(self) -> list[str]:
        """Each target's URL in apprise's privacy form, without its options."""
        return [target.name for target in self._targets]

    def briefing(self, title: str, markdown: str, attachment: Path | None = None) -> None:
        """The daily briefing: `markdown` as the body (apprise renders it for each target), `attachment`
        attached (the HTML report)."""
        self._send(_Notification(title, markdown, apprise.NotifyType.INFO, apprise.NotifyFormat.MARKDOWN, attachment))

    def alert(self, line: str) -> None:
        """A problem, in one line."""
        self._send(_Notification(ALERT_TITLE, line, apprise.NotifyType.FAILURE))

    def resolved(self, line: str) -> None:
        """The end of a problem an alert said."""
        self._send(_Notification(RESOLVED_TITLE, line, apprise.NotifyType.SUCCESS))

    def _send(self, notification: _Notification) -> None:
        for target in self._targets:
            target.queue.put(notification)

    def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Sends what is queued, waiting up to `timeout` seconds: each notification gets its attempt
        but no retry (one waiting for a retry is said not sent), and what is still unsent by then is
        left to its thread, which does not keep the process alive."""
        self._closing.set()
        for target in self._targets:
            target.queue.put(None)
        deadline = time.monotonic() + timeout
        for target in self._targets:
            target.thread.join(max(0.0, deadline - time.monotonic()))
        unsent = [target.name for target in self._targets if target.thread.is_alive()]
        if unsent:
            log.warning("notifications to %s not all sent after %.0f s: left behind", ", ".join(unsent), timeout)

    def __enter__(self) -> Notifier:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
