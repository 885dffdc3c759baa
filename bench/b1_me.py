"""B1: ``GET /v1/me`` with a valid JWT, cached and uncached, against its two baselines.

Five gunicorn servers under the production config (deploy/gunicorn.conf.py), each behind
its own nginx (nginx/test.conf.template: the production directives on loopback), as B1
says; every figure, baselines included, goes through nginx, so each side pays the same
proxy. Measured interleaved, median of 3 bounded runs at 16 connections on loopback:
- Groundwork, cached: session/user state and the profile come from Redis (the default);
- Groundwork, uncached: ``AUTH_STATE_CACHE_TTL_S=0``, every request reads PostgreSQL;
- bench/hello_app.py: the barest Flask JSON answer (the cached bar: ≥ 0.5×);
- a bare Flask endpoint reading one indexed row with SQLAlchemy Core (the uncached bar: ≥ 0.7×).

    .venv/bin/python -m bench.b1_me    # prints the rows, writes its section of bench/RESULTS-auth.md
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.b1_baseline import production_env  # noqa: E402 - after the path line above
from bench.common import (  # noqa: E402
    CONNECTIONS,
    REPS,
    ROOT,
    SECONDS,
    Load,
    Server,
    install_wrk,
    median_load,
    next_port,
    result_row,
    start_gunicorn,
    start_nginx,
    table_header,
)
from bench.workers import WorkerReport, WorkerWatch  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS-auth.md"  # B1 and B2 (bench/b2_login.py) share it, one section each
CACHED_TARGET, UNCACHED_TARGET, P99_TARGET_MS = 0.5, 0.7, 25.0
THREADS = int(os.environ.get("GUNICORN_THREADS", "4"))  # deploy/gunicorn.conf.py's default
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def write_section(path: Path, title: str, body: str) -> None:
    """Replace the ``## title`` section of ``path`` (other sections stay), dated."""
    from bench.common import machine_line

    text = path.read_text() if path.exists() else "# Accounts benchmarks (B1, B2)\n"
    section = f"## {title}\n\nMeasured {machine_line()}.\n\n{body}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.write_text(text.rstrip() + "\n")


def create_one_row_app():  # noqa: ANN201 - gunicorn factory: `bench.b1_me:create_one_row_app()`
    """A bare Flask app answering one indexed users row through SQLAlchemy Core."""
    import sqlalchemy as sa
    from flask import Flask, jsonify

    engine = sa.create_engine(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://", 1),
                              pool_size=10, max_overflow=10)
    query = sa.text("SELECT id, email, display_name, locale, time_zone FROM users WHERE id = :id")
    user_id = os.environ["BENCH_USER_ID"]
    app = Flask(__name__)

    @app.get("/row")
    def row():  # noqa: ANN202
        with engine.connect() as conn:
            found = conn.execute(query, {"id": user_id}).mappings().one()
        return jsonify({k: str(v) if v is not None else None for k, v in found.items()})

    return app


def wrk(url: str, header: str | None, seconds: float = SECONDS, connections: int = CONNECTIONS) -> Load:
    """One bounded wrk run (with an optional request header), loopback only."""
    assert url.startswith("http://127.0.0.1:")
    command = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s"]
    if header:
        command += ["-H", header]
    out = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    pct = {p: float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$",
                                                             out, re.M)}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket.groups())) if socket else 0)
    return Load(rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), p50_ms=pct["50"], p99_ms=pct["99"],
                requests=int(re.search(r"(\d+) requests in", out).group(1)), errors=errors, tool="wrk")


def serve(app_spec: str, run_dir: Path, *, env: dict[str, str] | None = None, ready_path: str = "/healthz"
          ) -> tuple[Server, Server]:
    """gunicorn (production config) serving ``app_spec`` and nginx in front of it: (gunicorn, nginx)."""
    app = start_gunicorn(app_spec, run_dir / "gunicorn", env=env, ready_path=ready_path, port=next_port())
    try:
        proxy = start_nginx(run_dir / "nginx", upstream_port=app.port, ready_path=ready_path,
                            listen_port=next_port(), stream_port=next_port())
    except BaseException:
        app.stop()
        raise
    return app, proxy


def prepare(env: dict[str, str]) -> tuple[str, str]:
    """Migrate the database, create one user and a session; return (user id, access token)."""
    from flask_migrate import upgrade

    from backend.app import create_app
    from backend.auth.models import User
    from backend.auth.passwords import hash_password
    from backend.auth.sessions import start_session
    from backend.common.db import utcnow
    from backend.extensions import db

    app = create_app({k: env[k] for k in ("ENV", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "JWT_PRIVATE_KEYS")}
                     | {"ACCESS_TOKEN_TTL_S": 3600, "LOG_JSON": False})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        user = User(email="bench@example.test", password_hash=hash_password("bench passphrase 1"),
                    email_verified_at=utcnow(), display_name="Bench", time_zone="Europe/Paris")
        db.session.add(user)
        db.session.commit()
        body = start_session(user=user, device_name="bench", platform="other", ip="127.0.0.1", user_agent="wrk")
        user_id = str(user.id)
        db.engine.dispose()
    return user_id, body["access_token"]


def main() -> int:
    """Run the interleaved measurements, print the rows, write the B1 section of bench/RESULTS-auth.md."""
    from tests.services import discover

    if not install_wrk() or not shutil.which("wrk"):
        print("wrk is needed for header-carrying load (apt-get install wrk)", file=sys.stderr)
        return 1
    run_dir = ROOT / "bench" / "out" / f"b1-me-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True)
    services = discover()
    started = []
    try:
        env = production_env(services.create_database(), services.redis_url, run_dir)
        env["ACCESS_TOKEN_TTL_S"] = "3600"  # one token for the whole run
        user_id, token = prepare(env)
        auth = f"Authorization: Bearer {token}"
        # name: (gunicorn app, its environment, readiness path, measured path, request header)
        servers = {
            "me cached": ("wsgi:app", env, "/healthz", "/v1/me", auth),
            "me uncached": ("wsgi:app", {**env, "AUTH_STATE_CACHE_TTL_S": "0"}, "/healthz", "/v1/me", auth),
            # Context: the same cached app without the general rate limiter (its Redis trips per request).
            "me cached, limiter off": ("wsgi:app", {**env, "RATELIMIT_ENABLED": "false"}, "/healthz", "/v1/me", auth),
            "hello": ("bench.hello_app:app", None, "/hello", "/hello", None),
            "one row": ("bench.b1_me:create_one_row_app()",
                        {"DATABASE_URL": env["DATABASE_URL"], "BENCH_USER_ID": user_id}, "/row", "/row", None),
        }
        targets = {}
        for name, (spec, server_env, ready, path, header) in servers.items():
            app, proxy = serve(spec, run_dir / name.replace(" ", "-").replace(",", ""), env=server_env,
                               ready_path=ready)
            started += [app, proxy]
            targets[name] = (app, f"{proxy.url}{path}", header)
        for _, url, header in targets.values():  # warm-up: imports, pools, caches
            wrk(url, header, seconds=1)
        runs: dict[str, list[Load]] = {name: [] for name in targets}
        seen: dict[str, list[WorkerReport]] = {name: [] for name in targets}
        for _ in range(REPS):
            for name, (server, url, header) in targets.items():
                with WorkerWatch(server.process.pid, server.port, SECONDS) as watch:
                    runs[name].append(wrk(url, header))
                seen[name].append(watch.report)
        med = {name: median_load(loads) for name, loads in runs.items()}
    finally:
        for server in reversed(started):  # nginx before the gunicorn behind it
            server.stop()
        services.close()

    def fig(load: Load) -> str:
        return f"{load.rps:,.0f} req/s (p99 {load.p99_ms:.1f} ms)"

    c, u, h, r = med["me cached"], med["me uncached"], med["hello"], med["one row"]
    clean = all(load.errors == 0 for load in med.values())
    rows = [table_header(),
            result_row("B1 GET /v1/me cached", fig(c), f"{fig(h)} Flask hello", c.rps / h.rps,
                       f"≥ {CACHED_TARGET}× hello", clean and c.rps / h.rps >= CACHED_TARGET),
            result_row("B1 GET /v1/me uncached", fig(u), f"{fig(r)} one-row Core", u.rps / r.rps,
                       f"≥ {UNCACHED_TARGET}× one-row", clean and u.rps / r.rps >= UNCACHED_TARGET),
            result_row(f"B1 /v1/me cached p99, {CONNECTIONS} conns", f"{c.p99_ms:.1f} ms", f"{h.p99_ms:.1f} ms hello",
                       None, f"≤ {P99_TARGET_MS:.0f} ms", clean and c.p99_ms <= P99_TARGET_MS),
            result_row("context: /v1/me cached, general rate limiter off", fig(med["me cached, limiter off"]),
                       f"{fig(h)} Flask hello", med["me cached, limiter off"].rps / h.rps, "context only", None)]
    spreads = [report.spread for report in seen["me cached"] if report.spread]
    worst = max((max(spread) for spread in spreads), default=0)
    recycled = sum(report.recycled for reports in seen.values() for report in reports)
    # nginx keeps up to 32 idle upstream connections (nginx/test.conf.template) and sends one request
    # at a time on each, so a worker may hold more connections than threads without queueing any:
    # the spread is context here, not a target (tests/e2e/test_gunicorn_balance.py checks the balance).
    rows += [result_row(f"context: /v1/me cached, nginx's upstream conns over the workers (wrk: {CONNECTIONS})",
                        " · ".join("/".join(map(str, sorted(sp, reverse=True))) for sp in spreads),
                        f"{THREADS} threads a worker (most on one: {worst})", None, "context only", None),
             result_row("B1 worker recycling inside runs", f"{recycled} recycled", "0", None, "none",
                        recycled == 0)]
    table = "\n".join(rows)
    print(table)
    details = ["| run | median | each rep (req/s) | p50 | p99 | errors |", "|---|---|---|---|---|---|"]
    for name, load in med.items():
        each = ", ".join(f"{rep.rps:,.0f}" for rep in runs[name])
        details.append(f"| {name} | {load.rps:,.0f} req/s | {each} | {load.p50_ms:.2f} ms | {load.p99_ms:.2f} ms "
                       f"| {load.errors} |")
    details += ["", "| run | workers, each rep (connections per worker mid-run; CPU per request; recycled) |",
                "|---|---|"]
    for name, reports in seen.items():
        details.append(f"| {name} | " + " · ".join(
            report.text(load.requests) for report, load in zip(reports, runs[name], strict=True)) + " |")
    one, five, fifteen = os.getloadavg()
    body = (f"{table}\n\n" + "\n".join(details) + "\n\n"
            f"wrk, 2 threads, {CONNECTIONS} connections, {SECONDS:.0f} s per run, {REPS} interleaved runs (median), "
            "nginx (nginx/test.conf.template) → gunicorn (production config) for every target, ENV=production, "
            "EdDSA tokens, rate limiter on with a "
            f"limit it never reaches. Load average at the end: {one:.1f} / {five:.1f} / {fifteen:.1f}.\n\n"
            f"Run: `.venv/bin/python -m bench.b1_me` (logs under {run_dir.relative_to(ROOT)}/).")
    write_section(RESULTS, "B1: GET /v1/me cached and uncached", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
