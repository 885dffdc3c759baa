"""B12: mixed load through nginx for minutes, against the same mix at idle.

The stack is tests/load/stack.py (nginx → gunicorn with the production config, an RQ
worker, the scheduler, the fake FCM server answering after 40 ms); locust drives phones
from their own loopback addresses (tests/load/locustfile.py). Phases, one after another:

0. warm-up: 20 s of the same phones, not recorded (fresh workers open connections, fill caches);
1. idle: the 50 phones of the later phases alone: the per-endpoint p99 they are judged against;
2. mixed: phones reading, sending events, registering devices, refreshing, people signing
   in, photo uploads, plus racing refreshes, ≥ 3 min: zero 5xx, p50/p95/p99 per endpoint;
3. login storm: the 50 phones beside continuous sign-ins: their p99 ≤ 2× idle;
4. refresh storm: many devices racing refreshes of one token each: no false logout;
5. campaign: the 50 phones while a 20,000-device campaign fans out: p99 ≤ 2× idle.

Each phase also records where the CPU went (cores used per group of processes).

    .venv/bin/python -m bench.b12_load [--minutes 3]    # writes bench/RESULTS-b12.md
    .venv/bin/python -m bench.b12_load --trial --phases idle,login-storm --phase-seconds 30
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
         "PUT /v1/notifications/devices/{id}", "POST /v1/auth/refresh", "POST /v1/analytics/events")
PHASES = ("idle", "mixed", "login-storm", "refresh-storm", "campaign")
PHONES = 50  # the phones of idle and of every storm phase
CAMPAIGN_DEVICES = 20_000
P99_FACTOR = 2.0


def worst_ratio(phase: PhaseResult, idle: PhaseResult) -> tuple[float, str]:
    """The largest p99(phase) / p99(idle) over the phone endpoints both measured."""
    ratios = [(phase.endpoints[n].p99 / idle.endpoints[n].p99, n) for n in READS
              if n in phase.endpoints and n in idle.endpoints and idle.endpoints[n].p99 > 0]
    return max(ratios) if ratios else (float("nan"), "none")


def phase_table(phases: list[PhaseResult], idle: PhaseResult | None) -> str:
    lines = ["| phase | endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | p99 / idle | failures |",
             "|---|---|---|---|---|---|---|---|---|"]
    for phase in phases:
        for name, e in sorted(phase.endpoints.items()):
            base = idle.endpoints.get(name) if idle is not None and phase is not idle else None
            ratio = f"{e.p99 / base.p99:.2f}×" if base is not None and base.p99 > 0 else "—"
            lines.append(f"| {phase.name} | {name} | {e.requests:,} | {e.rps:,.1f} | {e.p50:,.0f} | {e.p95:,.0f} | "
                         f"{e.p99:,.0f} | {ratio} | {e.failures} |")
    return "\n".join(lines)


def cpu_table(phases: list[PhaseResult]) -> str:
    groups = sorted({g for p in phases for g in p.cpu if g != "idle"}, key=lambda g: (g == "other", g))
    lines = ["| phase | " + " | ".join(groups) + " | idle |", "|---" * (len(groups) + 2) + "|"]
    for phase in phases:
        lines.append(f"| {phase.name} | " + " | ".join(f"{phase.cpu.get(g, 0.0):.2f}" for g in groups)
                     + f" | {phase.cpu.get('idle', 0.0):.2f} |")
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
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset, in this order")
    parser.add_argument("--trial", action="store_true", help="print the tables; leave RESULTS-b12.md alone")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for every process of the stack (e.g. WORKER_NICE=0, WEB_CONCURRENCY=3)")
    args = parser.parse_args()
    settings = dict(item.split("=", 1) for item in args.set)
    wanted = [p for p in PHASES if p in args.phases.split(",")]
    services = discover()
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="b12-", dir=ROOT / "bench" / "out"))
    started_load = load_average()
    results: dict[str, PhaseResult] = {}
    campaign_s: float | None = None
    try:
        with running_fake_fcm(project_id="groundwork-bench", latency_ms=40) as fake:
            url = fresh_database(services, services.redis_url)
            env = {**production_env(url, services.redis_url, run_dir), "PUSH_BACKEND": "fcm",
                   "FCM_CREDENTIALS_FILE": fake.credentials_path, "FCM_ENDPOINT": fake.base_url,
                   "RATELIMIT_DEFAULT": os.environ.get("RATELIMIT_DEFAULT", "600 per minute"),
                   "RATELIMIT_PER_USER": os.environ.get("RATELIMIT_PER_USER", "1200 per minute"),
                   "LOG_LEVEL": "WARNING", **settings}
            with LoadStack(env, run_dir / "stack") as stack:
                phones = stack.seed_accounts(400, tag="phone")
                stormers = stack.seed_accounts(2_000, tag="storm")
                [marketer] = stack.seed_accounts(1, tag="marketer", role="marketer")
                stack.seed_devices(CAMPAIGN_DEVICES, tag="audience")
                seconds = args.phase_seconds
                plan = {
                    "idle": lambda: stack.run("idle", seconds=seconds, users={"Phone": PHONES}, accounts=phones),
                    "mixed": lambda: stack.run(
                        "mixed", seconds=round(args.minutes * 60), accounts=phones,
                        users={"Phone": 100, "RefreshStorm": 20, "Uploader": 10, "Signer": 10}),
                    "login-storm": lambda: stack.run(
                        "login-storm", seconds=seconds, accounts=phones[:PHONES] + stormers,
                        users={"Phone": PHONES, "LoginStorm": 20}),
                    "refresh-storm": lambda: stack.run("refresh-storm", seconds=seconds, accounts=phones,
                                                       users={"Phone": PHONES, "RefreshStorm": 100}),
                }
                # Fresh gunicorn workers pay for their first requests (connections, caches): not idle's p99.
                stack.run("warm-up", seconds=20, users={"Phone": PHONES}, accounts=phones)
                for name in wanted:
                    if name == "campaign":
                        launched = time.monotonic()
                        campaign_id = launch_campaign(stack, marketer)
                        results[name] = stack.run("campaign", seconds=seconds, users={"Phone": PHONES},
                                                  accounts=phones)
                        stack.wait_for_campaign(campaign_id, timeout=300)
                        campaign_s = stack.scalar(
                            "SELECT extract(epoch FROM completed_at - launched_at) FROM campaigns WHERE id = :c",
                            c=campaign_id) or (time.monotonic() - launched)
                        campaign_s = float(campaign_s)
                    else:
                        results[name] = plan[name]()
    finally:
        services.close()
    phases = list(results.values())
    idle = results.get("idle")
    rows = []
    five_xx = sum(p.errors["5xx"] for p in phases)
    if "mixed" in results:
        mixed = results["mixed"]
        rows.append(result_row(
            f"B12 mixed load through nginx, {mixed.seconds / 60:.0f} min", f"{mixed.errors['5xx']} 5xx in "
            f"{mixed.requests:,} requests ({five_xx} in all {sum(p.requests for p in phases):,})", "—", None,
            "zero 5xx", five_xx == 0))
    if "login-storm" in results and idle is not None:
        ratio, worst = worst_ratio(results["login-storm"], idle)
        rows.append(result_row("B12 login storm: the phones' p99", f"worst {worst}", "same endpoint at idle",
                               ratio, f"≤ {P99_FACTOR}× idle", ratio <= P99_FACTOR))
    if "refresh-storm" in results:
        refresh = results["refresh-storm"]
        false_logouts = sum(p.errors["false logout"] for p in phases)
        rows.append(result_row(
            "B12 refresh storm (5 racing refreshes a device)", f"{false_logouts} false logouts in "
            f"{refresh.endpoints['POST /v1/auth/refresh (racing)'].requests:,} racing refreshes",
            "—", None, "no false logout", false_logouts == 0))
    if "campaign" in results and idle is not None:
        ratio, worst = worst_ratio(results["campaign"], idle)
        rows.append(result_row(f"B12 campaign of {CAMPAIGN_DEVICES:,} running: API p99", f"worst {worst}",
                               "same endpoint at idle", ratio, f"≤ {P99_FACTOR}× idle", ratio <= P99_FACTOR))
    errors = {p.name: dict(p.errors) for p in phases if p.errors}
    campaign_note = (f"The campaign sent its {CAMPAIGN_DEVICES:,} pushes in {campaign_s:,.0f} s from launch, "
                     f"beside a {args.phase_seconds} s phase. " if campaign_s is not None else "")
    body = "\n".join([
        table_header(), *rows, "",
        phase_table(phases, idle), "",
        "Where the CPU went (cores used on average; 2 cores in all; `other` is the rest of the machine, "
        "other sessions' work included):", "",
        cpu_table(phases), "",
        f"Failures by kind per phase: {errors or 'none'} (429 is a limit answering, with Retry-After). "
        f"{campaign_note}Load average at start {started_load}, at end {load_average()}. Phones send from their "
        "own 127.x.y.z address (per-address limits apply as in production). gunicorn: production config, "
        "ENV=production; one RQ worker and the scheduler (at WORKER_NICE), fake FCM answering after 40 ms. "
        f"Settings beyond the defaults: {settings or 'none'}. Logs: {run_dir.relative_to(ROOT)}.",
    ])
    if args.trial:
        print(body)
    else:
        write_results(RESULTS, "B12: load through nginx", body)
        print(table_header())
        print("\n".join(rows))
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"b12 took {time.monotonic() - started:,.0f} s", file=sys.stderr)
    raise SystemExit(code)
