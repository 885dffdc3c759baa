"""``python -m jobs.worker [queue ...]``: an RQ worker that runs jobs inside the app.

Each job gets an app context and a fresh SQLAlchemy session, removed afterwards;
SIGTERM is RQ's warm shutdown: the current job finishes, then the worker exits.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from typing import Any

import redis
from flask import Flask
from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from rq.serializers import JSONSerializer

from backend.common.jobs import QUEUES, get_queue, make_redis

log = logging.getLogger(__name__)


class AppJobMixin:
    """Runs each job in an app context with its own database session."""

    app: Flask
    fork_per_job = False

    def perform_job(self, job: Job, queue: Queue) -> bool:
        from backend.extensions import db

        with self.app.app_context():
            if self.fork_per_job and getattr(self, "_engine_pid", None) != os.getpid():
                # A forked work-horse must not reuse the parent's pooled connections.
                db.engine.dispose(close=False)
                self._engine_pid = os.getpid()
            try:
                return super().perform_job(job, queue)  # type: ignore[misc]
            finally:
                db.session.remove()


class GroundworkWorker(AppJobMixin, Worker):
    """Forking worker (production): a crashing job cannot take the worker down."""

    fork_per_job = True


class InProcessWorker(AppJobMixin, SimpleWorker):
    """Same job handling without fork: for tests and benchmarks in one process."""


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    """In a child forked by the worker: get SIGTERM when the worker dies, however it dies.

    The scheduler child and the work-horse are forked by the worker; if the worker is
    SIGKILLed nobody stops them and they run on as orphans (RQ's scheduler keeps moving
    jobs with nobody to work them). SIGTERM lets the scheduler release its lock; a
    work-horse's SIGTERM is the default action, so it ends at once. Its claimed rows are
    the lease's business.
    """
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != _FORKER[0]:  # the worker died before the guard was set
            os.kill(os.getpid(), signal.SIGTERM)


def _remember_forker() -> None:
    _FORKER[0] = os.getpid()


def install_orphan_guard() -> None:
    """Every child this process forks from now on dies with it (once per process)."""
    if not _FORKER:
        _FORKER.append(os.getpid())
        os.register_at_fork(before=_remember_forker, after_in_child=_die_with_parent)


_FORKER: list[int] = []


def build_worker(app: Flask, queue_names: list[str], *, in_process: bool = False, **kwargs: Any) -> Worker:
    """A worker on ``queue_names`` bound to ``app``, with the JSON serializer."""
    connection = make_redis(app.config["REDIS_URL"], socket_timeout=None)  # blocking dequeue
    queues = [get_queue(name, connection) for name in queue_names]
    cls = InProcessWorker if in_process else GroundworkWorker
    # A Redis outage kills the worker's RQ scheduler process (scheduled retries and
    # deferred pushes then wait); only a maintenance round starts it again, and an idle
    # worker wakes for one only when its blocking dequeue times out (worker_ttl - 15 s).
    # RQ's defaults (600 s, 405 s) would leave scheduled work waiting ten minutes.
    every = app.config["WORKER_MAINTENANCE_S"]
    kwargs.setdefault("maintenance_interval", every)
    kwargs.setdefault("worker_ttl", every + 15)
    worker = cls(queues, connection=connection, serializer=JSONSerializer, **kwargs)
    worker.app = app
    return worker


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and work until SIGTERM/SIGINT (or until empty with --burst)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("queues", nargs="*", default=list(QUEUES))
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--no-scheduler", action="store_true", help="do not move due scheduled jobs")
    args = parser.parse_args(argv)
    from backend.app import create_app

    app = create_app({"DB_STATEMENT_TIMEOUT_MS": 300_000})
    lower_priority(app.config["WORKER_NICE"])
    install_orphan_guard()
    while True:
        worker = build_worker(app, args.queues)
        log.info("worker starting on %s", ", ".join(args.queues))
        try:
            worker.work(burst=args.burst, with_scheduler=not args.no_scheduler, logging_level="INFO")
        except redis.RedisError:
            log.exception("worker stopped by a Redis error")
        if args.burst or worker._shutdown_requested_date is not None:  # SIGTERM/SIGINT, or done
            return
        # RQ quits when Redis goes away outside its dequeue loop (while finishing a job):
        # wait for Redis and work again, rather than leave the restart to a crash loop.
        wait_for_redis(app)


def lower_priority(nice: int) -> int:
    """Add ``nice`` (WORKER_NICE) to the CPU niceness of this worker and every job it forks; returns the new one.

    Bulk work (a campaign's fan-out, media, exports) yields the CPU to web processes on
    the same machine, as it does in production where workers run in pods of their own.
    With autogroup scheduling (Linux's default on desktops and many servers) niceness
    only orders tasks inside one session's group, so a worker leading its own session
    (a container's entrypoint, ``setsid``) lowers its group's niceness too; a worker in
    someone else's session (a shell) leaves the session's group alone.
    """
    if nice <= 0 or not hasattr(os, "nice"):
        return os.nice(0)
    niceness = os.nice(nice)
    if os.getsid(0) == os.getpid():
        # No autogroup here, or not permitted: the niceness above still holds.
        with contextlib.suppress(OSError), open("/proc/self/autogroup", "w", encoding="ascii") as group:
            group.write(str(niceness))
    log.info("worker running at niceness %s", niceness)
    return niceness


def wait_for_redis(app: Flask, *, longest_s: float = 10.0) -> None:
    """Block until Redis answers (backing off up to ``longest_s``); SIGTERM meanwhile just exits."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # no job runs: nothing to finish
    connection = make_redis(app.config["REDIS_URL"], socket_timeout=2.0)
    delay = 0.5
    while True:
        try:
            connection.ping()
            return
        except redis.RedisError as exc:
            log.warning("waiting for Redis: %s", exc)
            time.sleep(delay)
            delay = min(longest_s, delay * 2)


if __name__ == "__main__":
    main()
