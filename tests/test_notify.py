"""Notifications through apprise, received by a real HTTP server on 127.0.0.1 (apprise's json://):
what arrives, retries with backoff, one warning with the URL's secret hidden when a target never
takes it, targets that do not hold each other up, a bounded close, and URLs refused at start."""

from __future__ import annotations

import logging
import threading

import pytest

from forecaster.errors import UserError
from forecaster.notify import ALERT_TITLE, RESOLVED_TITLE, Notifier
from forecaster.retries import Backoff
from tests.support.processes import wait_for
from tests.support.receiver import receiving

FAST = Backoff(retries=2, first_delay=0.01)  # three attempts, as SEND_BACKOFF, without its minute of waits


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "forecaster.notify" and r.levelno >= logging.WARNING]


def test_a_briefing_arrives_with_its_title_its_markdown_and_the_report_attached(tmp_path):
    report = tmp_path / "report-2024-03-05.html"
    report.write_text("<html><body><h1>Forecast report 2024-03-05</h1></body></html>")
    markdown = "# Forecast report 2024-03-05\n\nForecasts made after the close of 2024-03-05: 3 tickers.\n"

    with receiving() as receiver, Notifier([receiver.url("briefing")], backoff=FAST) as notifier:
        notifier.briefing("Forecast report 2024-03-05 (preset default)", markdown, attachment=report)
        (received,) = receiver.wait_for(1)

    assert received.path == "/briefing"
    assert (received.title, received.type) == ("Forecast report 2024-03-05 (preset default)", "info")
    assert "Forecasts made after the close of 2024-03-05: 3 tickers." in received.message
    assert received.attachments == {"report-2024-03-05.html": report.read_bytes()}


def test_an_alert_arrives_as_a_failure_and_its_end_as_a_success():
    with receiving() as receiver, Notifier([receiver.url()], backoff=FAST) as notifier:
        notifier.alert("XNYS OVERDUE: the forecast from session 2024-03-06 is missing")
        receiver.wait_for(1)
        notifier.resolved("XNYS on time again")
        alert, resolved = receiver.wait_for(2)

    assert (alert.title, alert.type, alert.message) == (
        ALERT_TITLE,
        "failure",
        "XNYS OVERDUE: the forecast from session 2024-03-06 is missing",
    )
    assert (resolved.title, resolved.type, resolved.message) == (RESOLVED_TITLE, "success", "XNYS on time again")


def test_every_target_gets_each_notification():
    with receiving() as first, receiving() as second, Notifier([first.url(), second.url()], backoff=FAST) as notifier:
        notifier.alert("run 7 failed")
        assert [r.message for r in first.wait_for(1)] == [r.message for r in second.wait_for(1)] == ["run 7 failed"]


def test_a_target_that_answers_500_then_200_is_sent_the_notification_again_and_takes_it(caplog):
    caplog.set_level(logging.INFO, logger="forecaster")
    with receiving(statuses=[500, 200]) as receiver, Notifier([receiver.url()], backoff=FAST) as notifier:
        notifier.alert("run 7 failed")
        first, second = receiver.wait_for(2)

    assert first.message == second.message == "run 7 failed"
    assert _warnings(caplog) == []
    assert any("not sent" in r.getMessage() and "attempt 2 of 3" in r.getMessage() for r in caplog.records)


def test_a_target_that_never_takes_it_is_tried_three_times_then_said_once_with_its_secret_hidden(caplog):
    with receiving(statuses=[500]) as receiver:
        notifier = Notifier([receiver.url(login="user:SECRET")], backoff=FAST)
        notifier.alert("run 7 failed")
        wait_for(lambda: _warnings(caplog), 60, "the warning")
        notifier.close()

    (warning,) = _warnings(caplog)
    assert len(receiver.received) == 3, "the three attempts, no more"
    assert f"to json://user:****@127.0.0.1:{receiver.port}/hook not sent after 3 attempt(s)" in warning
    assert "error=500" in warning, "apprise's reason"
    assert all(r.authorization for r in receiver.received), "the login was sent"
    assert "SECRET" not in caplog.text


def test_sending_returns_at_once_and_a_target_that_holds_on_delays_no_other():
    with receiving() as slow, receiving() as quick:
        slow.hold.clear()  # it reads each request and answers none
        notifier = Notifier([slow.url(), quick.url()], backoff=FAST)
        notifier.alert("run 7 failed")  # returns while the slow target has not answered

        assert [r.message for r in quick.wait_for(1)] == ["run 7 failed"]
        assert [r.message for r in slow.wait_for(1)] == ["run 7 failed"]
        assert slow.answered == 0
        slow.hold.set()
        notifier.close()
        assert slow.answered == 1


def test_closing_sends_what_is_queued():
    with receiving() as receiver:
        notifier = Notifier([receiver.url()], backoff=FAST)
        for n in range(3):
            notifier.alert(f"alert {n}")
        notifier.close()

        assert [r.message for r in receiver.received] == ["alert 0", "alert 1", "alert 2"]


def test_closing_does_not_wait_for_a_retry(caplog):
    with receiving(statuses=[500]) as receiver:
        notifier = Notifier([receiver.url()], backoff=Backoff(retries=2, first_delay=3600))
        notifier.alert("run 7 failed")
        receiver.wait_for(1)
        closing = threading.Thread(target=notifier.close)
        closing.start()
        closing.join(timeout=60)

    assert not closing.is_alive(), "an hour's wait for the retry was cut short"
    assert _warnings(caplog) == [
        f"notification {ALERT_TITLE!r} to json://127.0.0.1:{receiver.port}/hook not sent: "
        "the daemon stopped before it could be tried again"
    ]


def test_a_notifier_without_urls_sends_nothing_and_runs_no_thread():
    notifier = Notifier([])
    notifier.briefing("Forecast report", "# Forecast report")
    notifier.alert("run 7 failed")
    notifier.close()

    assert notifier.targets == []
    assert not [t for t in threading.enumerate() if t.name.startswith("notify")]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("slack://TokenA/TokenB", "slack://***"),  # a token missing: apprise cannot load it
        ("slak://user:SECRET@hooks.example.com/x", "slak://***"),  # no such service
        ("SECRET", "***"),
    ],
)
def test_a_url_apprise_cannot_send_to_is_refused_naming_the_setting_and_nothing_of_the_url_past_its_scheme(url, shown):
    with receiving() as receiver, pytest.raises(UserError) as refused:
        Notifier([receiver.url(), url])

    message = str(refused.value)
    assert message.startswith(f"FORECASTER_NOTIFY_URLS: URL 2 of 2 ({shown}) is not one apprise can send to")
    assert "SECRET" not in message and "Token" not in message
    assert not [t for t in threading.enumerate() if t.name.startswith("notify")], "the first target's thread ended"
