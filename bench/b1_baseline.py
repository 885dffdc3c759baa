"""B1, baseline half: Groundwork's /healthz against a bare Flask JSON hello.

Both apps run under the production gunicorn config (deploy/gunicorn.conf.py), each
measured directly and through nginx (the loopback variant of the production config),
interleaved, median of 3 bounded runs at 16 connections. Groundwork runs with
ENV=production and its rate limiter enabled (a limit too high to trip), so a request
pays whatever the limiter costs on that route in production; a limiter-off run shows it.

    .venv/bin/python bench/b1_baseline.py    # prints the rows, writes bench/RESULTS-b1.md
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.common import (  # noqa: E402 - after the path line above
    CONNECTIONS,
    REPS,
    ROOT,
    SECONDS,
    Load,
    install_wrk,
    measure,
    median_load,
    result_row,
    start_gunicorn,
    start_nginx,
    table_header,
    write_results,
)

RESULTS = ROOT / "bench" / "RESULTS-b1.md"
RATIO_TARGET = 0.5  # B1: cached GET /v1/me >= 0.5x hello; /healthz is its ceiling
P99_TARGET_MS = 25.0


def production_env(database_url: str, redis_url: str, run_dir: Path) -> dict[str, str]:
    """A complete production configuration with throwaway secrets."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    return {
        "ENV": "production",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_PRIVATE_KEYS": pem,
        "PROXY_FIX_X_FOR": "1",
        "RATELIMIT_DEFAULT": "1000000000 per minute",
        "RATELIMIT_PER_USER": "1000000000 per minute",  # one token drives the whole run
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_PATH": str(run_dir / "storage"),
        "LOG_LEVEL": "INFO",
        "LOG_JSON": "true",
    }


def load_average() -> str:
    """The 1/5/15-minute load averages: a shared machine's noise, for the record."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def describe(load: Load) -> str:
    return f"{load.rps:,.0f} req/s (p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms)"


def main() -> int:
    """Run the four measurements, print the rows, write bench/RESULTS-b1.md."""
    from tests.services import discover

    install_wrk()
    run_dir = ROOT / "bench" / "out" / f"b1-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True)
    services = discover()
    started = []
    try:
        env = production_env(services.create_database(), services.redis_url, run_dir)
        hello = start_gunicorn("bench.hello_app:app", run_dir / "hello", ready_path="/hello")
        started.append(hello)
        groundwork = start_gunicorn("wsgi:app", run_dir / "groundwork", env=env)
        started.append(groundwork)
        # Context only: the same app with the limiter off shows what its Redis trips cost.
        unlimited = start_gunicorn(
            "wsgi:app", run_dir / "groundwork-nolimit", env={**env, "RATELIMIT_ENABLED": "false"}
        )
        started.append(unlimited)
        hello_nginx = start_nginx(run_dir / "nginx-hello", upstream_port=hello.port, ready_path=None)
        started.append(hello_nginx)
        gw_nginx = start_nginx(run_dir / "nginx-groundwork", upstream_port=groundwork.port)
        started.append(gw_nginx)

        targets = {
            "hello direct": f"{hello.url}/hello",
            "groundwork direct": f"{groundwork.url}/healthz",
            "hello via nginx": f"{hello_nginx.url}/hello",
            "groundwork via nginx": f"{gw_nginx.url}/healthz",
            "groundwork direct, limiter off": f"{unlimited.url}/healthz",
        }
        for url in targets.values():  # warm up imports, pools, nginx keep-alive
            measure(url, seconds=1)
        runs: dict[str, list[Load]] = {name: [] for name in targets}
        for _ in range(REPS):  # interleaved, so drift on a shared machine hits all alike
            for name, url in targets.items():
                runs[name].append(measure(url))
        med = {name: median_load(loads) for name, loads in runs.items()}
    finally:
        for server in reversed(started):
            server.stop()
        services.close()

    rows = [table_header()]
    for path in ("direct", "via nginx"):
        gw, base = med[f"groundwork {path}"], med[f"hello {path}"]
        ratio = gw.rps / base.rps
        clean = gw.errors == 0 and base.errors == 0
        rows.append(
            result_row(
                f"B1 baseline: GET /healthz {path}",
                f"{gw.rps:,.0f} req/s",
                f"{base.rps:,.0f} req/s (Flask hello)",
                ratio,
                f"≥ {RATIO_TARGET}× hello (B1's cached bar)",
                clean and ratio >= RATIO_TARGET,
            )
        )
    gw = med["groundwork via nginx"]
    rows.append(
        result_row(
            f"B1 baseline: /healthz p99 via nginx, {CONNECTIONS} conns",
            f"{gw.p99_ms:.1f} ms",
            f"{med['hello via nginx'].p99_ms:.1f} ms (Flask hello)",
            None,
            f"≤ {P99_TARGET_MS:.0f} ms",
            gw.errors == 0 and gw.p99_ms <= P99_TARGET_MS,
        )
    )
    unlimited_load = med["groundwork direct, limiter off"]
    rows.append(
        result_row(
            "context: GET /healthz direct, rate limiter off",
            f"{unlimited_load.rps:,.0f} req/s",
            f"{med['hello direct'].rps:,.0f} req/s (Flask hello)",
            unlimited_load.rps / med["hello direct"].rps,
            "context only",
            None,
        )
    )
    nginx_cost = med["hello via nginx"].rps / med["hello direct"].rps
    rows.append(
        result_row(
            "nginx in front (hello via nginx / direct)",
            describe(med["hello via nginx"]),
            describe(med["hello direct"]),
            nginx_cost,
            "context only",
            None,
        )
    )
    table = "\n".join(rows)
    print(table)

    details = [
        "| run | median | each rep (req/s) | p50 | p99 | requests (all reps) | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, load in med.items():
        each = ", ".join(f"{rep.rps:,.0f}" for rep in runs[name])
        details.append(
            f"| {name} | {load.rps:,.0f} req/s | {each} | {load.p50_ms:.2f} ms | "
            f"{load.p99_ms:.2f} ms | {load.requests:,} | {load.errors} |"
        )
    tool = next(iter(med.values())).tool
    body = (
        f"{table}\n\n## Absolute figures\n\n" + "\n".join(details) + "\n\n"
        f"Load: {tool}, 2 threads, {CONNECTIONS} connections, {SECONDS:.0f} s per run, "
        f"{REPS} interleaved runs per target (median), on loopback with the servers on the "
        "same cores. gunicorn: deploy/gunicorn.conf.py defaults (gthread, 2×cores+1 "
        "workers, 4 threads). nginx: nginx/test.conf.template (shared production "
        "directives). Groundwork: ENV=production, rate limiter enabled as in production "
        "with a limit it never reaches (the limiter-off run shows what it costs on this "
        "route), JSON logs at INFO.\n\n"
        f"Machine load when the run started: {load_average()}.\n\n"
        f"Run: `.venv/bin/python bench/b1_baseline.py` (logs under {run_dir.relative_to(ROOT)}/)."
    )
    write_results(RESULTS, "B1 baseline: /healthz vs bare Flask hello", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
