"""B12: mixed load through nginx for minutes, against the same mix at idle.

The stack is tests/load/stack.py (nginx → gunicorn with the production config, an RQ
worker, the scheduler, the fake FCM server answering after 40 ms); locust drives phones
from their own loopback addresses (tests/load/locustfile.py). Phases, one after another:

1. idle: a few phones, the per-endpoint p99 every later phase is judged against;
2. mixed: phones reading, registering devices, refreshing, plus racing refreshes, ≥ 3 min:
   zero 5xx, p50/p95/p99 per endpoint;
3. login storm: phones beside continuous sign-ins: other endpoints' p99 ≤ 2× idle;
4. refresh storm: many devices racing refreshes of one token each: no false logout;
5. campaign: phones while a 20,000-device campaign fans out: p99 ≤ 2× idle.

    .venv/bin/python -m bench.b12_load [--minutes 3]    # writes bench/RESULTS-b12.md
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.b1_baseline import load_average, production_env  # noqa: E402
from bench.common import ROOT, result_row, table_header, write_results  # noqa: E402
from tests.fakes.fcm_server import running_fake_fcm  # noqa: E402
from tests.load.stack import PASSWORD, LoadStack, PhaseResult, fresh_database  # noqa: E402
from tests.services import discover  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS-b12.md"
READS = ("GET /v1/me", "GET /v1/notifications/inbox", "GET /v1/notifications/inbox/unread-count",
         "PUT /v1/notifications/devices/{id}", "POST /v1/auth/refresh")
CAMPAIGN_DEVICES = 20_000
P99_FACTOR = 2.0


def worst_ratio(phase: PhaseResult, idle: PhaseResult) -> tuple[float, str]:
    """The largest p99(phase) / p99(idle) over the phone endpoints both measured."""
    ratios = [(phase.endpoints[n].p99 / idle.endpoints[n].p99, n) for n in READS
              if n in phase.endpoints and n in idle.endpoints and idle.endpoints[n].p99 > 0]
    return max(ratios) if ratios else (float("nan"), "none")


def phase_table(phases: list[PhaseResult]) -> str:
    lines = ["| phase | endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | failures |",
             "|---|---|---|---|---|---|---|---|"]
    for phase in phases:
        for name, e in sorted(phase.endpoints.items()):
            lines.append(f"| {phase.name} | {name} | {e.requests:,} | {e.rps:,.1f} | {e.p50:,.0f} | {e.p95:,.0f} | "
                         f"{e.p99:,.0f} | {e.failures} |")
    return "\n".join(lines)


def launch_campaign(stack: LoadStack, marketer: str) -> str:
    import requests

    session = requests.Session()
    login = session.post(f"{stack.url}/v1/auth/login", json={"email": marketer, "password": PASSWORD}, timeout=30)
    login.raise_for_status()
    session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    created = session.post(f"{stack.url}/v1/campaigns", timeout=30, json={
        "name": "b12", "category": "promotional", "audience": {"type": "all"}, "schedule": {"type": "now"},
        "message": {"default_locale": "en", "locales": {"en": {"title": "Hello", "body": "News"}}}})
    created.raise_for_status()
    campaign_id = created.json()["id"]
    session.post(f"{stack.url}/v1/campaigns/{campaign_id}/launch", json={}, timeout=30).raise_for_status()
    return campaign_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the mixed phase (≥ 3 for B12)")
    parser.add_argument("--phase-seconds", type=int, default=60, help="length of each other phase")
    args = parser.parse_args()
    services = discover()
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="b12-", dir=ROOT / "bench" / "out"))
    started_load = load_average()
    try:
        with running_fake_fcm(project_id="groundwork-bench", latency_ms=40) as fake:
            url = fresh_database(services, services.redis_url)
            env = {**production_env(url, services.redis_url, run_dir), "PUSH_BACKEND": "fcm",
                   "FCM_CREDENTIALS_FILE": fake.credentials_path, "FCM_ENDPOINT": fake.base_url,
                   "RATELIMIT_DEFAULT": os.environ.get("RATELIMIT_DEFAULT", "600 per minute"),
                   "LOG_LEVEL": "WARNING"}
            with LoadStack(env, run_dir / "stack") as stack:
                phones = stack.seed_accounts(400, tag="phone")
                stormers = stack.seed_accounts(2_000, tag="storm")
                [marketer] = stack.seed_accounts(1, tag="marketer", role="marketer")
                stack.seed_devices(CAMPAIGN_DEVICES, tag="audience")
                seconds = args.phase_seconds
                idle = stack.run("idle", seconds=seconds, users={"Phone": 8}, accounts=phones)
                mixed = stack.run("mixed", seconds=round(args.minutes * 60),
                                  users={"Phone": 100, "RefreshStorm": 20}, accounts=phones)
                logins = stack.run("login-storm", seconds=seconds, users={"Phone": 50, "LoginStorm": 20},
                                   accounts=phones[:50] + stormers)
                refresh = stack.run("refresh-storm", seconds=seconds, users={"Phone": 50, "RefreshStorm": 100},
                                    accounts=phones)
                campaign_id = launch_campaign(stack, marketer)
                campaign = stack.run("campaign", seconds=seconds, users={"Phone": 50}, accounts=phones)
                stack.wait_for_campaign(campaign_id, timeout=900)
    finally:
        services.close()
    phases = [idle, mixed, logins, refresh, campaign]
    five_xx = sum(p.errors["5xx"] for p in phases)
    login_ratio, login_worst = worst_ratio(logins, idle)
    campaign_ratio, campaign_worst = worst_ratio(campaign, idle)
    false_logouts = sum(p.errors["false logout"] for p in phases)
    rows = [
        result_row(f"B12 mixed load through nginx, {mixed.seconds / 60:.0f} min", f"{five_xx} 5xx in "
                   f"{sum(p.requests for p in phases):,} requests", "—", None, "zero 5xx", five_xx == 0),
        result_row("B12 login storm: other endpoints' p99", f"worst {login_worst}", "same endpoint at idle",
                   login_ratio, f"≤ {P99_FACTOR}× idle", login_ratio <= P99_FACTOR),
        result_row("B12 refresh storm (5 racing refreshes a device)", f"{false_logouts} false logouts in "
                   f"{refresh.endpoints.get('POST /v1/auth/refresh (racing)').requests:,} racing refreshes",
                   "—", None, "no false logout", false_logouts == 0),
        result_row(f"B12 campaign of {CAMPAIGN_DEVICES:,} running: API p99", f"worst {campaign_worst}",
                   "same endpoint at idle", campaign_ratio, f"≤ {P99_FACTOR}× idle", campaign_ratio <= P99_FACTOR),
    ]
    errors = {p.name: dict(p.errors) for p in phases if p.errors}
    body = "\n".join([
        table_header(), *rows, "",
        phase_table(phases), "",
        f"Failures by kind per phase: {errors or 'none'}. Load average at start {started_load}, at end "
        f"{load_average()}. Phones send from their own 127.x.y.z address (per-address limits apply as in "
        "production). gunicorn: production config, ENV=production; one RQ worker, the scheduler, fake FCM "
        "answering after 40 ms. Event ingest and uploads join the mix when their domains exist. "
        f"Logs: {run_dir.relative_to(ROOT)}.",
    ])
    write_results(RESULTS, "B12: load through nginx", body)
    print(table_header())
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"b12 took {time.monotonic() - started:,.0f} s", file=sys.stderr)
    raise SystemExit(code)
