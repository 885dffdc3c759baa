"""Prometheus metrics: request count and latency per endpoint, queue depth and age, job outcomes.

A backlog is a metric to alert on, never a readiness reason: taking every web pod out of
the load balancer because work is waiting would turn a backlog into an outage.

Under gunicorn, set ``PROMETHEUS_MULTIPROC_DIR`` (deploy/gunicorn.conf.py does) so
every worker process's samples are aggregated at scrape time.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import redis
from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from rq.job import Job
from rq.queue import Queue
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.utils import now as rq_now

from backend.common.jobs import QUEUES, get_queue, redis_client
from backend.operations.work_metrics import WorkCollector

REQUESTS = Counter(
    "groundwork_http_requests_total", "HTTP requests by endpoint, method and status",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "groundwork_http_request_duration_seconds", "HTTP request latency by endpoint",
    ["endpoint", "method"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Counted in the web process that accepts the batch (backend.analytics ingest).
ANALYTICS_EVENTS_INGESTED = Counter(
    "groundwork_analytics_events_ingested_total", "Analytics events accepted and stored",
)

bp = Blueprint("metrics", __name__)


def oldest_job_age_s(queue: Queue) -> float:
    """Seconds the job at the head of ``queue`` has waited (0 when the queue is empty)."""
    head = queue.get_job_ids(0, 1)  # RQ pops from the left: the head waited longest
    jobs = Job.fetch_many(head, connection=queue.connection, serializer=queue.serializer) if head else []
    enqueued = [job.enqueued_at for job in jobs if job is not None and job.enqueued_at is not None]
    return max(0.0, (rq_now() - enqueued[0]).total_seconds()) if enqueued else 0.0


class QueueCollector(Collector):
    """Reads queue depth, oldest job age and job registries from Redis at scrape time."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("groundwork_queue_depth", "Jobs waiting per queue", labels=["queue"])
        age = GaugeMetricFamily("groundwork_queue_oldest_job_age_seconds",
                                "Seconds the oldest waiting job of a queue has waited (0: empty)", labels=["queue"])
        jobs = GaugeMetricFamily("groundwork_jobs", "Jobs per queue and state", labels=["queue", "state"])
        connection = redis_client(self.app)
        try:
            for name in QUEUES:
                queue = get_queue(name, connection)
                depth.add_metric([name], queue.count)
                age.add_metric([name], oldest_job_age_s(queue))
                for state, registry in (("started", StartedJobRegistry), ("finished", FinishedJobRegistry),
                                        ("failed", FailedJobRegistry)):
                    jobs.add_metric([name, state], registry(queue=queue).count)
        except redis.RedisError:
            return
        yield depth
        yield age
        yield jobs


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


# Label children by label values: ``labels()`` validates, locks and looks up on every
# call; the set of (route, method, status) is small and fixed by the route table.
_LATENCY_CHILDREN: dict[tuple[str, str], Any] = {}
_REQUEST_CHILDREN: dict[tuple[str, str, int], Any] = {}


def _observe(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    if started is None:
        return response
    elapsed = time.perf_counter() - started
    current = request._get_current_object()  # type: ignore[attr-defined] - one proxy lookup, not four
    endpoint = current.url_rule.rule if current.url_rule else "unmatched"
    method, status = current.method, response.status_code
    latency = _LATENCY_CHILDREN.get((endpoint, method))
    if latency is None:
        latency = _LATENCY_CHILDREN.setdefault((endpoint, method), LATENCY.labels(endpoint, method))
    latency.observe(elapsed)
    count = _REQUEST_CHILDREN.get((endpoint, method, status))
    if count is None:
        count = _REQUEST_CHILDREN.setdefault((endpoint, method, status),
                                             REQUESTS.labels(endpoint, method, str(status)))
    count.inc()
    return response


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus exposition of this process (or all gunicorn workers) plus queues."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry_default

        registry = registry_default
    data = generate_latest(registry) + generate_latest(current_app.extensions["groundwork.queue_metrics"])
    return Response(data, mimetype=CONTENT_TYPE_LATEST)


def register_metrics(app: Flask) -> None:
    """Time every request and expose /metrics."""
    queue_registry = CollectorRegistry()
    queue_registry.register(QueueCollector(app))
    queue_registry.register(WorkCollector(app))
    app.extensions["groundwork.queue_metrics"] = queue_registry
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.register_blueprint(bp)
