"""B10: a 100k-recipient campaign end to end (audience → ledger → batches → push → stats).

100,000 users with one device each; a draft campaign (audience "all", schedule "now") is
launched through the campaigns service, then real workers (``python -m jobs.worker push``)
run materialize (audience query + ledger INSERT … SELECT) → dispatch → lanes → the fake
FCM (answers after 40 ms), and the stats service reads the result. Wall time runs from the
launch to the stats answer. Baseline (BENCHMARKS.md): the audience query's time (the
hand-written SQL, fetched in full) + 100k ÷ the bare aiohttp rate measured in this run
(B3's baseline, 20k messages).

The API's p99 is measured the same way as B1 (wrk, 16 connections, ``GET /v1/me`` with a
valid JWT, gunicorn under the production config on the same database and Redis): once
idle before the launch, once while the campaign runs. Target: during ≤ 2× idle.

    .venv/bin/python bench/b10_campaign.py [--count 100000] [--workers 2] [--api-seconds 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from sqlalchemy import text  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from bench.b1_baseline import production_env  # noqa: E402
from bench.b1_me import prepare, wrk  # noqa: E402
from bench.b3_campaign import Worker, run_baseline, start_stack, statuses, update_results  # noqa: E402
from bench.common import ROOT, Load, install_wrk, result_row, start_gunicorn, table_header  # noqa: E402

TARGET = 1.3
P99_TARGET = 2.0


class ApiProbe:
    """``GET /v1/me`` under wrk against a gunicorn on the benchmark's database: idle, then during the campaign."""

    def __init__(self, stack: object, out: Path, seconds: float) -> None:
        config = stack.app.config  # type: ignore[attr-defined]
        env = production_env(config["DATABASE_URL"], config["REDIS_URL"], out / "api")
        env["ACCESS_TOKEN_TTL_S"] = "3600"
        _user_id, token = prepare(env)
        self.header = f"Authorization: Bearer {token}"
        self.server = start_gunicorn("wsgi:app", out / "api", env=env)
        self.url = f"{self.server.url}/v1/me"
        self.seconds = seconds
        self.during: Load | None = None
        self._thread: threading.Thread | None = None

    def idle(self) -> Load:
        wrk(self.url, self.header, seconds=2)  # warm-up
        return wrk(self.url, self.header, seconds=self.seconds)

    def start_during(self) -> None:
        def run() -> None:
            self.during = wrk(self.url, self.header, seconds=self.seconds)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def finish(self) -> Load | None:
        if self._thread is not None:
            self._thread.join(self.seconds + 60)
        self.server.stop()
        return self.during
AUDIENCE_SQL = ("SELECT d.id, d.user_id, d.time_zone, d.locale FROM devices d JOIN users u ON u.id = d.user_id "
                "WHERE d.token IS NOT NULL AND d.disabled_at IS NULL AND d.push_permission <> 'denied'")


def main() -> int:
    from backend.extensions import db
    from backend.notifications.campaigns.models import Campaign
    from backend.notifications.campaigns.services import launch_campaign
    from backend.notifications.campaigns.stats import campaign_stats
    from tests.delivery.factories import MESSAGE, bulk_users

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--api-seconds", type=float, default=10.0, help="wrk run length, idle and during")
    args = parser.parse_args()
    out = ROOT / "bench" / "out" / f"b10-{time.strftime('%Y%m%d-%H%M%S')}"
    stack = start_stack(out, latency_ms=40)
    load = os.getloadavg()
    try:
        bare = run_baseline(stack, 20_000)
        with stack.app.app_context():
            bulk_users(db.session, args.count, zones=["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC"])
            db.session.commit()
            db.session.execute(text("ANALYZE users; ANALYZE devices"))
            db.session.commit()
            started = time.perf_counter()
            rows = db.session.execute(text(AUDIENCE_SQL)).all()
            audience_s = time.perf_counter() - started
            db.session.remove()
        if len(rows) != args.count:
            raise RuntimeError(f"audience has {len(rows)} devices, not {args.count}")
        probe = ApiProbe(stack, out, args.api_seconds) if install_wrk() else None
        idle = probe.idle() if probe else None
        workers = [Worker(stack, "push", name=f"b10-worker-{i}") for i in range(args.workers)]
        stack.fake.reset()
        with stack.app.app_context():
            campaign = Campaign(name="b10", status="draft", category="promotional", audience={"type": "all"},
                                message=MESSAGE, schedule={"type": "now"})
            db.session.add(campaign)
            db.session.commit()
            campaign_id = campaign.id
            started = time.perf_counter()
            launch_campaign(db.session, campaign_id=campaign_id)
            db.session.remove()
            if probe:
                probe.start_during()
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                db.session.rollback()
                if db.session.execute(text("SELECT status FROM campaigns WHERE id = :c"),
                                      {"c": campaign_id}).scalar_one() == "completed":
                    break
                time.sleep(0.1)
            sent_s = time.perf_counter() - started
            try:
                stats = campaign_stats(db.session, campaign_id=campaign_id)
                stats_note = "stats service answered"
            except SQLAlchemyError as exc:  # reported, not hidden: the campaign itself is measured
                db.session.rollback()
                stats, stats_note = {}, f"stats service FAILED ({type(exc.orig or exc).__name__})"
            wall = time.perf_counter() - started
            stats_s = wall - sent_s
            db.session.remove()
        during = probe.finish() if probe else None
        cpu = sum(worker.stop() for worker in workers)
        final = statuses(stack.app, campaign_id)
        received = stack.fake.stats()["counters"].get("accepted", 0)
    finally:
        stack.close()
    if final != {"sent": args.count} or received != args.count:
        raise RuntimeError(f"incomplete: ledger {final}, fake accepted {received}")
    baseline = audience_s + args.count / bare.rate
    ratio = wall / baseline
    row = result_row(f"B10 campaign end to end: {args.count:,} recipients, {args.workers} workers",
                     f"{wall:,.1f} s ({args.count / wall:,.0f} msg/s, {cpu / args.count * 1000:.3f} ms worker CPU/msg)",
                     f"{baseline:,.1f} s (audience SQL {audience_s:.2f} s + {args.count:,} ÷ {bare.rate:,.0f} msg/s "
                     "bare aiohttp)", ratio, f"≤ {TARGET}× (time)", ratio <= TARGET)
    rows = [row]
    if idle and during:
        p99_ratio = during.p99_ms / idle.p99_ms
        rows.append(result_row("B10 API p99 during the campaign: GET /v1/me, wrk 16 connections",
                               f"{during.p99_ms:.1f} ms p99 ({during.rps:,.0f} req/s, {during.errors} errors)",
                               f"{idle.p99_ms:.1f} ms p99 idle ({idle.rps:,.0f} req/s)", p99_ratio,
                               f"≤ {P99_TARGET}× idle", p99_ratio <= P99_TARGET))
    print(table_header())
    print("\n".join(rows))
    summary = {k: v for k, v in stats.items() if k in ("totals", "summary", "targeted", "sent")}
    section = (f"## B10 (100k campaign end to end)\n\n{table_header()}\n" + "\n".join(rows) + "\n\n"
               f"Wall = launch (campaigns service) → materialize → dispatch → lanes → fake FCM (+40 ms) → campaign "
               f"completed ({sent_s:,.1f} s) → {stats_note} ({stats_s:,.1f} s). "
               f"Stats excerpt: {summary or list(stats)[:6]}. "
               + ("API p99 measured with wrk over the first " f"{args.api_seconds:.0f} s after the launch. "
                  if idle and during else "API p99 not measured (wrk unavailable). ") +
               f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
               f"nproc={os.cpu_count()}, load {load[0]:.1f}. Logs: {out.relative_to(ROOT)}.\n")
    update_results("B10", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
