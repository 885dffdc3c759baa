"""Redis stopped under a real worker process: it resumes work, and its scheduler comes back.

RQ's worker retries its connection through an outage, but the scheduler process it
forks dies with the first refused connection; only the worker's maintenance round starts
it again. Until then, scheduled work (retries with backoff, pushes deferred past quiet
hours, FCM's Retry-After) waits: ``WORKER_MAINTENANCE_S`` bounds that wait.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask

from backend.app import create_app
from backend.common.jobs import get_queue, make_redis
from tests.conftest import app_settings
from tests.e2e.processes import ROOT, environment_of
from tests.ops.redis_server import RedisServer
from tests.waiting import wait_for

pytestmark = pytest.mark.chaos

MAINTENANCE_S = 2
JOB = "jobs.maintenance.purge_idempotency_keys"  # harmless, and its result shows it ran


@pytest.fixture
def worker_app(committed_app: Flask, own_redis: RedisServer, database_url: str) -> Flask:
    return create_app(app_settings(database_url, own_redis.url, WORKER_MAINTENANCE_S=MAINTENANCE_S))


@pytest.fixture
def worker(worker_app: Flask, tmp_path: Path) -> Iterator[Path]:
    """``python -m jobs.worker default`` (forking, with RQ's scheduler); yields its log file."""
    log_path = tmp_path / "worker.log"
    env = {**environment_of(worker_app, LOG_LEVEL="INFO"), "PATH": os.environ.get("PATH", "")}
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "jobs.worker", "default"], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        yield log_path
    finally:
        process.terminate()  # warm shutdown; its scheduler and work-horse die with it
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def finished(job) -> bool:  # noqa: ANN001 - rq.job.Job
    return job.get_status(refresh=True) == "finished"


def test_worker_resumes_and_its_scheduler_returns_after_redis_restarts(worker_app, own_redis, worker):
    connection = make_redis(own_redis.url, socket_timeout=2)
    queue = get_queue("default", connection)
    wait_for(lambda: connection.exists("rq:scheduler-lock:default"), timeout=30, what="the worker's scheduler")
    before = queue.enqueue_in(timedelta(seconds=0), JOB)
    wait_for(lambda: finished(before), timeout=30, what="a scheduled job before the outage")

    own_redis.stop()
    wait_for(lambda: "could not connect to Redis" in worker.read_text() and "raised an exception" in worker.read_text(),
             timeout=30, what="the worker and its scheduler to meet the outage")
    own_redis.start()  # empty, like a Redis that lost its data

    now = queue.enqueue(JOB)
    wait_for(lambda: finished(now), timeout=30,
             what=f"a job enqueued after the outage (log: {worker.read_text()[-3000:]})")
    later = queue.enqueue_in(timedelta(seconds=1), JOB)
    wait_for(lambda: finished(later), timeout=MAINTENANCE_S * 5 + 15,
             what=f"a scheduled job after the outage (log: {worker.read_text()[-1500:]})")
    connection.close()
