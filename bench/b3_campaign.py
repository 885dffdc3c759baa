"""B3, full path: a campaign fanned out by one RQ worker through Groundwork's push path.

A 20,000-row campaign ledger is sent by one ``python -m jobs.worker push`` process (forking,
RQ scheduler on): dispatch → lanes → claim 500 rows (SKIP LOCKED, committed 'sending') →
policy → pyfcm payloads → pooled FCM v1 sender → one UPDATE per batch → inbox entries. The
fake FCM server runs in its own process and answers after 40 ms. Baseline: a bare aiohttp
loop (one session, 500 in flight) sending the same number of messages to the same server.
Client CPU is the worker's own CPU plus its work-horses' (``wait4`` rusage), minus its
start-up. A last run injects 1% random 429/503 and counts at the fake: every device once.

A scaling run sends the same campaign with 1 and with 4 workers (``--scaling 1,4``):
production runs many workers, so more of them must go faster.

    .venv/bin/python bench/b3_campaign.py [--count 20000] [--reps 2] [--scaling 1,4]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

import psutil  # noqa: E402
import redis  # noqa: E402
from flask import Flask  # noqa: E402
from rq import Worker as RqWorker  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.b3_fanout import Run, outgoing, run_bare  # noqa: E402
from bench.common import ROOT, result_row, table_header, write_results  # noqa: E402
from tests.fakes.fcm_server import FakeFcmControl, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS-delivery.md"
RATIO_TARGET = 0.7
CPU_TARGET_MS = 0.3


@dataclass
class Stack:
    """A scratch database + Redis DB, the fake FCM in its own process, and an app pointed at them."""

    app: Flask
    fake: FakeFcmControl
    fake_process: subprocess.Popen[bytes]
    services: Any
    out: Path

    def worker_env(self) -> dict[str, str]:
        config = self.app.config
        return {**os.environ, "DATABASE_URL": config["DATABASE_URL"], "REDIS_URL": config["REDIS_URL"],
                "ENV": "test", "LOG_JSON": "false", "LOG_LEVEL": "WARNING", "PUSH_BACKEND": "fcm",
                "FCM_CREDENTIALS_FILE": self.fake.credentials_path, "FCM_ENDPOINT": self.fake.base_url,
                "SECRET_KEY": "bench-secret-key-that-is-long-enough-1234567890", "PYTHONPATH": str(ROOT)}

    def close(self) -> None:
        self.fake_process.terminate()
        self.fake_process.wait(10)
        self.services.close()


def start_stack(out: Path, *, latency_ms: float) -> Stack:
    """Everything B3/B5/B10 need, on loopback, in a fresh database."""
    from flask_migrate import upgrade

    from backend.app import create_app
    from backend.embedded import start_redis, stop_process
    from backend.extensions import db
    from tests.conftest import app_settings
    from tests.services import discover

    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    credentials = out / "service-account.json"
    command = [sys.executable, "-m", "tests.fakes.fcm_server", "--port", str(port), "--write-credentials",
               str(credentials), "--latency-ms", str(latency_ms)]
    fake_process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                    stdout=(out / "fake-fcm.log").open("wb"), stderr=subprocess.STDOUT)
    fake = FakeFcmControl(f"http://127.0.0.1:{port}", credentials, "groundwork-fake")
    for _ in range(100):
        try:
            fake.stats()
            break
        except OSError:
            time.sleep(0.1)
    services = discover()
    url = services.create_database()
    # A private redis-server: a shared one's DB numbers get flushed by concurrent test sessions.
    redis_url, redis_process = start_redis(out / "redis", persist=False)
    services.cleanups.append(lambda: stop_process(redis_process))
    app = create_app(app_settings(url, redis_url, PUSH_BACKEND="fcm", FCM_CREDENTIALS_FILE=str(credentials),
                                  FCM_ENDPOINT=fake.base_url, DB_POOL_SIZE=5))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()
    return Stack(app, fake, fake_process, services, out)


class Worker:
    """One real worker process; its CPU (with its work-horses') is read when it exits."""

    def __init__(self, stack: Stack, *queues: str, name: str = "worker") -> None:
        log = (stack.out / f"{name}.log").open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "jobs.worker", *(queues or ("push",))], cwd=ROOT,
                                        env=stack.worker_env(), stdout=log, stderr=subprocess.STDOUT)
        connection = redis.Redis.from_url(stack.app.config["REDIS_URL"])
        deadline = time.monotonic() + 60
        # Ready once RQ registered it (imports and create_app done): CPU from here on is work.
        while not any(w.pid == self.process.pid for w in RqWorker.all(connection=connection)):
            if time.monotonic() > deadline:
                raise RuntimeError("worker did not register with RQ in 60 s")
            time.sleep(0.05)
        times = psutil.Process(self.process.pid).cpu_times()
        self.startup_cpu = times.user + times.system

    def stop(self) -> float:
        """SIGTERM (warm shutdown), wait; returns CPU seconds spent after start-up, horses included."""
        self.process.send_signal(signal.SIGTERM)
        _pid, _status, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = 0
        return usage.ru_utime + usage.ru_stime - self.startup_cpu


def statuses(app: Flask, campaign_id: Any) -> dict[str, int]:
    from backend.extensions import db

    with app.app_context():
        rows = db.session.execute(text("SELECT status, count(*) FROM push_deliveries WHERE campaign_id = :c "
                                       "GROUP BY status"), {"c": campaign_id}).all()
        db.session.remove()
    return dict(rows)  # type: ignore[arg-type]


def wait_done(app: Flask, campaign_id: Any, *, timeout: float, reconcile_every: float | None = None) -> float:
    """Seconds until no row is pending/deferred/sending (polled every 50 ms)."""
    from backend.extensions import db
    from backend.notifications.delivery import reconcile

    started = last = time.perf_counter()
    while time.perf_counter() - started < timeout:
        left = statuses(app, campaign_id)
        if not any(left.get(s) for s in ("pending", "deferred", "sending")):
            return time.perf_counter() - started
        if reconcile_every and time.perf_counter() - last > reconcile_every:
            with app.app_context():
                reconcile.reconcile(db.session, lease_s=1200)
                db.session.remove()
            last = time.perf_counter()
        time.sleep(0.05)
    raise TimeoutError(f"campaign not done after {timeout}s: {statuses(app, campaign_id)}")


def new_campaign(stack: Stack, count: int, **fields: Any) -> Any:
    from backend.common.db import utcnow
    from backend.extensions import db
    from tests.delivery.factories import bulk_campaign

    with stack.app.app_context():
        campaign_id = bulk_campaign(db.session, count, due_at=fields.pop("due_at", utcnow() - timedelta(seconds=1)),
                                    **fields)
        db.session.remove()
    return campaign_id


def dispatch(stack: Stack, campaign_id: Any, instants: list[Any] | None = None) -> None:
    from backend.common.db import utcnow
    from backend.extensions import db
    from backend.notifications.delivery.dispatch import schedule_dispatch

    with stack.app.app_context():
        schedule_dispatch(db.session, campaign_id=campaign_id, due_instants=instants or [utcnow()])
        db.session.commit()
        db.session.remove()


def run_groundwork(stack: Stack, count: int, workers: int = 1) -> Run:
    """One campaign of ``count`` devices through ``workers`` workers; wall from dispatch to the last row recorded."""
    stack.fake.reset()
    campaign_id = new_campaign(stack, count)
    pool = [Worker(stack, "push", name=f"b3-worker-{i}-{time.time():.0f}") for i in range(workers)]
    started = time.perf_counter()
    dispatch(stack, campaign_id)
    wait_done(stack.app, campaign_id, timeout=600, reconcile_every=15)
    wall = time.perf_counter() - started
    cpu = sum(worker.stop() for worker in pool)
    sent = statuses(stack.app, campaign_id).get("sent", 0)
    if sent != count:
        raise RuntimeError(f"only {sent} of {count} sent")
    return Run(count, sent, wall, cpu)


def run_baseline(stack: Stack, count: int) -> Run:
    """The bare aiohttp loop (bench/b3_fanout.py), token fetched beforehand, CPU of this process."""
    import google.auth.transport.requests
    from google.oauth2 import service_account

    credentials = service_account.Credentials.from_service_account_file(
        stack.fake.credentials_path, scopes=["https://www.googleapis.com/auth/firebase.messaging"])
    credentials.refresh(google.auth.transport.requests.Request())
    stack.fake.reset()
    messages = outgoing(count, "bare")
    url = f"{stack.fake.endpoint_base}/{stack.fake.project_id}/messages:send"
    wall, cpu = time.perf_counter(), time.process_time()
    sent = run_bare(url, credentials.token, messages)
    run = Run(count, sent, time.perf_counter() - wall, time.process_time() - cpu)
    if sent != count:
        raise RuntimeError(f"bare loop: only {sent} of {count} sent")
    return run


def run_with_errors(stack: Stack, count: int) -> dict[str, Any]:
    """1% random 429 (Retry-After 1 s) / 503: every device must be received exactly once."""
    stack.fake.reset()
    stack.fake.configure(error_rate=0.01, retry_after_s=1, seed=11)
    campaign_id = new_campaign(stack, count)
    worker = Worker(stack, "push", name="b3-errors-worker")
    started = time.perf_counter()
    dispatch(stack, campaign_id)
    wall = wait_done(stack.app, campaign_id, timeout=600, reconcile_every=30)
    worker.stop()
    received = Counter(m["token"] for m in stack.fake.messages())
    counters = stack.fake.stats()["counters"]
    stack.fake.reset()
    return {"wall_s": time.perf_counter() - started if wall is None else wall,
            "statuses": statuses(stack.app, campaign_id), "distinct": len(received),
            "doubled": sum(1 for n in received.values() if n > 1), "lost": count - len(received),
            "errors": {k: v for k, v in counters.items() if k in ("QUOTA_EXCEEDED", "UNAVAILABLE")}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--scaling", default="1,4", help="worker counts of the scaling run (empty: none)")
    args = parser.parse_args()
    out = ROOT / "bench" / "out" / f"b3-campaign-{time.strftime('%Y%m%d-%H%M%S')}"
    stack = start_stack(out, latency_ms=40)
    load = os.getloadavg()
    try:
        ours, bare = [], []
        for rep in range(args.reps):  # interleaved, alternating who goes first
            pair = (run_groundwork, run_baseline) if rep % 2 == 0 else (run_baseline, run_groundwork)
            for runner in pair:
                (ours if runner is run_groundwork else bare).append(runner(stack, args.count))
                time.sleep(1)
        errors = run_with_errors(stack, args.count)
        scaling = [(n, run_groundwork(stack, args.count, workers=n)) for n in map(int, filter(None,
                                                                                              args.scaling.split(",")))]
    finally:
        stack.close()
    rate = statistics.median(r.rate for r in ours)
    cpu_ms = statistics.median(r.cpu_ms for r in ours)
    base_rate = statistics.median(r.rate for r in bare)
    base_cpu = statistics.median(r.cpu_ms for r in bare)
    ratio = rate / base_rate
    rows = [result_row(f"B3 campaign fan-out: {args.count:,} msgs, 1 RQ worker, fake FCM +40 ms",
                       f"{rate:,.0f} msg/s, {cpu_ms:.3f} ms CPU/msg",
                       f"{base_rate:,.0f} msg/s, {base_cpu:.3f} ms CPU/msg (bare aiohttp, 500 in flight)", ratio,
                       f"≥ {RATIO_TARGET}× and ≤ {CPU_TARGET_MS} ms CPU/msg",
                       ratio >= RATIO_TARGET and cpu_ms <= CPU_TARGET_MS),
            result_row(f"B3 with 1% random 429/503: {args.count:,} msgs",
                       f"lost {errors['lost']}, doubled {errors['doubled']}, {errors['wall_s']:.1f} s", "—", None,
                       "every message once, none lost or doubled",
                       errors["lost"] == 0 and errors["doubled"] == 0)]
    if len(scaling) > 1:
        (few, first), (many, last) = scaling[0], scaling[-1]
        rows.append(result_row(f"B3 scaling: {args.count:,} msgs, {many} workers vs {few}",
                               f"{last.rate:,.0f} msg/s with {many} ({last.cpu_ms:.3f} ms CPU/msg)",
                               f"{first.rate:,.0f} msg/s with {few}", last.rate / first.rate,
                               "> 1× (more workers go faster)", last.rate > first.rate))
    print(table_header())
    for row in rows:
        print(row)
    reps = "\n".join(f"| {name} | {', '.join(f'{r.rate:,.0f}' for r in runs)} | "
                     f"{', '.join(f'{r.cpu_ms:.3f}' for r in runs)} |" for name, runs in (("groundwork", ours),
                                                                                        ("bare aiohttp", bare)))
    section = (f"## B3 (full path)\n\n{table_header()}\n" + "\n".join(rows) +
               f"\n\n| run | msg/s | ms CPU/msg |\n|---|---|---|\n{reps}\n\n"
               f"1% errors run: server answered {errors['errors']}; final ledger {errors['statuses']}.\n"
               f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, nproc={os.cpu_count()}. "
               f"Load average at start: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}. "
               f"Logs: {out.relative_to(ROOT)}.\n")
    update_results("B3", section)
    return 0


def update_results(key: str, section: str) -> None:
    """Replace (or add) one benchmark's section of bench/RESULTS-delivery.md."""
    parts: dict[str, str] = {}
    if RESULTS.exists():
        current = None
        for line in RESULTS.read_text().splitlines(keepends=True):
            if line.startswith("## "):
                current = line[3:].split()[0]
                parts[current] = ""
            if current:
                parts[current] += line
    parts[key] = section if section.endswith("\n") else section + "\n"
    body = "\n".join(parts[k].rstrip("\n") + "\n" for k in sorted(parts))
    write_results(RESULTS, "Delivery engine benchmarks (B3, B5, B10)", body)


if __name__ == "__main__":
    raise SystemExit(main())
