"""The daemon's process: the worker thread, the scheduler lock, the heartbeat and signals.

Every `forecaster run` process works on the cycles' tasks; the one that holds the scheduler
lock also runs the APScheduler scheduler (forecaster.daemon.scheduler).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler

from forecaster.daemon import heartbeat
from forecaster.daemon.leadership import Leadership
from forecaster.daemon.scheduler import ForecastJob, Schedule, started_scheduler
from forecaster.errors import CycleInterrupted, one_line
from forecaster.signals import stop_on_signals

log = logging.getLogger(__name__)

#: How often the scheduler checks it still holds the lock, and another process tries to take it.
LEADERSHIP_POLL_SECONDS = 2.0
#: How long an idle worker waits before looking for tasks again, and one that hit an error.
WORKER_POLL_SECONDS = 1.0
WORKER_ERROR_PAUSE_SECONDS = 5


def _try_to_lead(leadership: Leadership, unreachable: list[str]) -> bool:
    """One attempt at the scheduler lock; a database that is down is logged once per outage."""
    try:
        acquired = leadership.try_acquire()
    except sa.exc.DBAPIError as error:
        if not unreachable:
            log.warning(
                "database unavailable (%s); trying again every %.0f s", one_line(error), LEADERSHIP_POLL_SECONDS
            )
        unreachable[:] = [one_line(error)]
        return False
    if unreachable:
        log.info("database reachable again")
        unreachable.clear()
    return acquired


def _work_until_stopped(work: Callable[[], int], stop: threading.Event) -> None:
    """The worker thread: claims and trains tasks until a stop request; waits a moment when there
    are none, and rides out a database outage with one log line per outage."""
    outage: str | None = None
    while not stop.is_set():
        try:
            claims = work()
        except CycleInterrupted:
            return
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:  # the database is away: one line per outage
            if outage is None:
                log.warning(
                    "worker: database unavailable (%s); retrying every %d s",
                    one_line(error),
                    WORKER_ERROR_PAUSE_SECONDS,
                )
            outage = one_line(error)
            stop.wait(WORKER_ERROR_PAUSE_SECONDS)
            continue
        except Exception:
            log.exception("worker: claim failed; retrying in %d s", WORKER_ERROR_PAUSE_SECONDS)
            stop.wait(WORKER_ERROR_PAUSE_SECONDS)
            continue
        if outage is not None:
            log.info("worker: database reachable again")
            outage = None
        if claims == 0:
            stop.wait(WORKER_POLL_SECONDS)


def serve(
    schedule: Schedule,
    *,
    forecast: ForecastJob,
    report: Callable[[], object],
    watch: Callable[[], object] | None,
    work: Callable[[], int],
    leadership: Leadership,
    heartbeat_file: str | None,
    stop: threading.Event,
) -> None:
    """Runs until SIGTERM or SIGINT. On PostgreSQL every process runs `work` (claim and train
    the cycles' tasks) in a worker thread; the one process that holds `leadership` also schedules
    `forecast` at once (the catch-up) and then on its trigger (it is passed what fired it),
    `report` on the report schedule, and `watch`, if given, every few minutes; with a
    `heartbeat_file`, every process beats into it. The scheduler checks every few seconds that
    it still holds the lock and steps down when it does not (its database connection died); the
    others try to take it every few seconds, riding out database outages, so another takes over
    when the scheduler dies. On a signal, the job in flight sees `stop`, ends at its next ticker
    chunk, and this returns once it has."""

    with stop_on_signals(stop):
        # On SQLite (one writer, one process) the scheduler's own cycles do all the work.
        worker = threading.Thread(target=_work_until_stopped, args=(work, stop), name="worker")
        if not leadership.single_process:
            worker.start()
        log.info(
            "daemon running (pid %d); scheduler: %s",
            os.getpid(),
            "this process" if leadership.is_leader else "another process, for now",
        )
        scheduler: BackgroundScheduler | None = None
        unreachable: list[str] = []
        unwritable: str | None = None  # why the heartbeat file cannot be written, said once
        try:
            while not stop.is_set():  # a timed wait keeps the main thread ready for signals
                if scheduler is None:
                    if _try_to_lead(leadership, unreachable):
                        scheduler = started_scheduler(schedule, forecast, report, watch)
                elif not leadership.verify():
                    log.warning("stepping down as the scheduler; another process may take over")
                    scheduler.shutdown(wait=True)  # the job in flight stops at its next check
                    scheduler = None
                if heartbeat_file:
                    failed = heartbeat.beat(
                        heartbeat_file,
                        role="worker" if scheduler is None else "scheduler",
                        database=unreachable[0] if unreachable else "ok",
                    )
                    if failed and not unwritable:
                        log.warning(
                            "cannot write the heartbeat file %s (%s): status --process will call this process stale",
                            heartbeat_file,
                            failed,
                        )
                    elif unwritable and not failed:
                        log.info("heartbeat file %s written again", heartbeat_file)
                    unwritable = failed
                stop.wait(LEADERSHIP_POLL_SECONDS)
        finally:
            stop.set()
            if scheduler is not None:
                scheduler.shutdown(wait=True)
            if worker.is_alive():
                worker.join()
            leadership.release()
            log.info("daemon stopped")
