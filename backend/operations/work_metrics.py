"""Metrics of work done in worker processes: push outcomes and transcode times.

RQ forks a work-horse per job, so a prometheus_client counter bumped inside a job dies
with that process, and worker pods serve no /metrics. These counters therefore live in
Redis (one hash each, a few commands per batch, best effort: a metric never fails the
work) and every web pod's /metrics reports the cluster-wide totals, like the queue
gauges. Dashboards and alerts read them with ``max without (instance, pod)``. A Redis
flush resets them; Prometheus' ``rate()`` treats that as a counter reset.

Call ``count_push_outcomes`` once per FCM batch and ``observe_transcode_seconds`` once
per transcode, from any process with the app's Redis client.
"""
from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator, Mapping

import redis
from flask import Flask
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from backend.common.jobs import redis_client

log = logging.getLogger(__name__)

PUSH_OUTCOMES_KEY = "groundwork:metrics:push_outcomes"
TRANSCODE_KEY = "groundwork:metrics:media_transcode_seconds"
TRANSCODE_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0)


def count_push_outcomes(outcomes: Mapping[str, int], *, connection: redis.Redis | None = None) -> None:
    """Add one batch's provider outcomes (``{"sent": 480, "unregistered": 3}``)."""
    counts = {str(outcome): int(n) for outcome, n in outcomes.items() if n}
    if not counts:
        return
    try:
        pipe = (connection or redis_client()).pipeline(transaction=False)
        for outcome, n in counts.items():
            pipe.hincrby(PUSH_OUTCOMES_KEY, outcome, n)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("push outcomes not counted: %s", exc)


def observe_transcode_seconds(seconds: float, *, connection: redis.Redis | None = None) -> None:
    """Record how long one media transcode took."""
    index = bisect.bisect_left(TRANSCODE_BUCKETS, seconds)
    bucket = str(TRANSCODE_BUCKETS[index]) if index < len(TRANSCODE_BUCKETS) else "+Inf"
    try:
        pipe = (connection or redis_client()).pipeline(transaction=False)
        pipe.hincrby(TRANSCODE_KEY, bucket, 1)
        pipe.hincrby(TRANSCODE_KEY, "count", 1)
        pipe.hincrbyfloat(TRANSCODE_KEY, "sum", max(0.0, seconds))
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("transcode time not recorded: %s", exc)


class WorkCollector(Collector):
    """Reads the work counters from Redis at scrape time (in one round trip)."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self) -> Iterator[Metric]:
        outcomes = CounterMetricFamily("groundwork_push_outcomes", "Pushes by provider outcome (all workers)",
                                       labels=["outcome"])
        try:
            pipe = redis_client(self.app).pipeline(transaction=False)
            raw_outcomes, raw_transcodes = pipe.hgetall(PUSH_OUTCOMES_KEY).hgetall(TRANSCODE_KEY).execute()
        except redis.RedisError:
            return
        for outcome, n in sorted(raw_outcomes.items()):
            outcomes.add_metric([outcome.decode()], float(n))
        yield outcomes
        yield _transcode_histogram({k.decode(): float(v) for k, v in raw_transcodes.items()})


def _transcode_histogram(raw: dict[str, float]) -> HistogramMetricFamily:
    cumulative, buckets = 0.0, []
    for bound in (*TRANSCODE_BUCKETS, "+Inf"):
        cumulative += raw.get(str(bound), 0.0)
        buckets.append((str(bound), cumulative))
    return HistogramMetricFamily("groundwork_media_transcode_seconds", "Wall time of one media transcode (all workers)",
                                 buckets=buckets, sum_value=raw.get("sum", 0.0))
