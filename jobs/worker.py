"""``python -m jobs.worker [queue ...]``: an RQ worker that runs jobs inside the app.

Each job gets an app context and a fresh SQLAlchemy session, removed afterwards;
SIGTERM is RQ's warm shutdown: the current job finishes, then the worker exits.
"""
from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys
from typing import Any

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
    worker = build_worker(app, args.queues)
    install_orphan_guard()
    log.info("worker starting on %s", ", ".join(args.queues))
    worker.work(burst=args.burst, with_scheduler=not args.no_scheduler, logging_level="INFO")


if __name__ == "__main__":
    main()
