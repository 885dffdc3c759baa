"""B5: scheduling precision of local-time sends, against a direct RQ enqueue at the due instant.

200 recipients in 13 zones (half-hour and quarter-hour offsets, both hemispheres, a DST
zone) get a campaign at 09:00 *their* time. The due instants are computed DST-correctly by
Groundwork's scheduler (backend.notifications.campaigns.schedule), then, since waiting a day is not
a bounded benchmark, mapped in order onto the next 40 s (same order, proportional gaps).
Groundwork: ledger rows with those due instants + ``schedule_dispatch`` (one RQ
``enqueue_at`` per distinct instant) → worker → lane → fake FCM; lateness = arrival at the
fake − due instant. Baseline: one ``enqueue_at`` per send at its due instant of a job that
records when it starts; lateness = start − due. Same worker process type, one worker.

    .venv/bin/python bench/b5_schedule.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.b3_campaign import Worker, dispatch, start_stack, update_results, wait_done  # noqa: E402
from bench.common import ROOT, result_row, table_header  # noqa: E402

ZONES = ["Pacific/Kiritimati", "Pacific/Auckland", "Australia/Lord_Howe", "Asia/Kathmandu", "Asia/Kolkata",
         "Europe/Paris", "Europe/London", "America/St_Johns", "America/New_York", "America/Denver",
         "America/Los_Angeles", "Pacific/Marquesas", "Pacific/Honolulu"]
COUNT = 200
WINDOW_S = 40.0
LEAD_S = 8.0
RESULT_KEY = "bench:b5:starts"


def record_start(*, key: str, due: str) -> None:
    """Baseline job: note when it started relative to its due instant."""
    from backend.common.jobs import redis_client

    redis_client().hset(RESULT_KEY, key, f"{time.time()}|{due}")


def compressed_dues(now: datetime) -> dict[str, datetime]:
    """09:00 local tomorrow in each zone (DST-correct), mapped in order onto [now+LEAD, now+LEAD+WINDOW]."""
    from backend.notifications.campaigns.schedule import local_to_utc

    day = (now + timedelta(days=1)).date()
    real = {zone: local_to_utc(date(day.year, day.month, day.day), wall_time(9, 0), zone) for zone in ZONES}
    first, last = min(real.values()), max(real.values())
    span = (last - first).total_seconds() or 1.0
    start = now + timedelta(seconds=LEAD_S)
    return {zone: (start + timedelta(seconds=round((at - first).total_seconds() / span * WINDOW_S, 3)))
            for zone, at in real.items()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    from sqlalchemy import text

    from backend.common.db import utcnow
    from backend.common.jobs import get_queue, redis_client
    from backend.extensions import db
    from tests.delivery.factories import bulk_campaign

    out = ROOT / "bench" / "out" / f"b5-{time.strftime('%Y%m%d-%H%M%S')}"
    stack = start_stack(out, latency_ms=0)
    load = os.getloadavg()
    try:
        worker = Worker(stack, "push", name="b5-worker")
        with stack.app.app_context():
            # Baseline: a direct enqueue_at of a trivial job per send.
            dues = compressed_dues(utcnow())
            queue = get_queue("push")
            for i in range(COUNT):
                due = dues[ZONES[i % len(ZONES)]]
                queue.enqueue_at(due, "bench.b5_schedule.record_start", kwargs={"key": str(i), "due": due.isoformat()},
                                 job_id=f"b5-baseline-{i}")
            deadline = time.monotonic() + LEAD_S + WINDOW_S + 300
            while redis_client().hlen(RESULT_KEY) < COUNT and time.monotonic() < deadline:
                time.sleep(0.2)
            starts = redis_client().hgetall(RESULT_KEY)
            baseline = []
            for raw in starts.values():
                started, due = raw.decode().split("|")
                baseline.append(float(started) - datetime.fromisoformat(due).timestamp())
            # Groundwork: the campaign ledger and its dispatches.
            stack.fake.reset()
            dues = compressed_dues(utcnow())
            campaign_id = bulk_campaign(db.session, COUNT, due_at=min(dues.values()), zones=ZONES, due_by_zone=dues)
            db.session.remove()
        dispatch(stack, campaign_id, sorted(set(dues.values())))
        wait_done(stack.app, campaign_id, timeout=LEAD_S + WINDOW_S + 120)
        worker.stop()
        with stack.app.app_context():
            due_by_token = dict(db.session.execute(text(
                "SELECT dv.token, d.due_at FROM push_deliveries d JOIN devices dv ON dv.id = d.device_id "
                "WHERE d.campaign_id = :c"), {"c": campaign_id}).all())
            db.session.remove()
        ours = [m["received_at"] - due_by_token[m["token"]].timestamp() for m in stack.fake.messages()]
    finally:
        stack.close()
    if len(ours) != COUNT or len(baseline) != COUNT:
        raise RuntimeError(f"incomplete: groundwork {len(ours)}, baseline {len(baseline)} of {COUNT}")
    p99, base_p99 = percentile(ours, 0.99), percentile(baseline, 0.99)
    early = sum(1 for x in ours if x < 0)
    holds = p99 <= base_p99 + 1.0 and early == 0
    row = result_row(f"B5 scheduling precision: {COUNT} local-time sends, {len(ZONES)} zones",
                     f"p99 lateness {p99 * 1000:,.0f} ms (p50 {statistics.median(ours) * 1000:,.0f} ms), "
                     f"{early} early",
                     f"p99 {base_p99 * 1000:,.0f} ms (p50 {statistics.median(baseline) * 1000:,.0f} ms), direct "
                     "enqueue_at", None, "p99 ≤ baseline p99 + 1 s; nothing early", holds)
    print(table_header())
    print(row)
    section = (f"## B5 (scheduling precision)\n\n{table_header()}\n{row}\n\n"
               f"Groundwork lateness = arrival at the fake FCM − due instant (max {max(ours) * 1000:,.0f} ms, "
               f"min {min(ours) * 1000:,.0f} ms); baseline = job start − due (max {max(baseline) * 1000:,.0f} ms). "
               f"Due instants: 09:00 local tomorrow in {', '.join(ZONES)}, computed DST-correctly, then mapped in "
               f"order onto a {WINDOW_S:.0f} s window. One forking worker with RQ's scheduler (polls ~1 s). "
               f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, nproc={os.cpu_count()}, load "
               f"{load[0]:.1f}. Logs: {out.relative_to(ROOT)}.\n")
    update_results("B5", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
