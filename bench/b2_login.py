"""B2: ``POST /v1/auth/login`` over 200 users against a raw Argon2id verify loop.

Both sides use every core the same way: the baseline verifies the 200 users' hashes in
one process per core (argon2-cffi, the parameters backend.auth.passwords uses); the
login side sends the same 200 sign-ins to gunicorn (production config) with twice as
many client threads as cores (``--clients``). Median of 3 interleaved repetitions (``--reps``).

Then B2's second target on the same server: ``GET /v1/me``'s p99 (wrk, a few connections,
one token) while sign-ins run, against its p99 with nothing else running (≤ 2×).

    .venv/bin/python -m bench.b2_login    # prints the rows, writes its section of bench/RESULTS-auth.md
    .venv/bin/python -m bench.b2_login --clients 20 --reps 5 --no-write   # an experiment, results not written
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.b1_baseline import production_env  # noqa: E402 - after the path line above
from bench.b1_me import RESULTS, write_section, wrk  # noqa: E402
from bench.common import (  # noqa: E402
    REPS,
    ROOT,
    SECONDS,
    Load,
    install_wrk,
    next_port,
    result_row,
    start_gunicorn,
    table_header,
)

USERS = 200
PASSWORD = "bench login passphrase"
TARGET = 0.8
ME_CONNECTIONS = 4  # a steady reader beside the sign-ins, not a second saturating load


def _verify_chunk(hashes: list[str]) -> int:
    from backend.auth.passwords import verify_password

    return sum(verify_password(h, PASSWORD) for h in hashes)


def raw_verify_rate(hashes: list[str]) -> float:
    """Verifications per second, one process per core."""
    cores = os.cpu_count() or 1
    chunks = [hashes[i::cores] for i in range(cores)]
    with ProcessPoolExecutor(cores) as pool:
        list(pool.map(_verify_chunk, [c[:2] for c in chunks]))  # warm the workers
        started = time.perf_counter()
        verified = sum(pool.map(_verify_chunk, chunks))
        elapsed = time.perf_counter() - started
    assert verified == len(hashes)
    return len(hashes) / elapsed


def login_rate(url: str, emails: list[str], clients: int) -> tuple[float, int]:
    """Sign-ins per second over HTTP, and how many did not answer 200."""
    import requests

    local = __import__("threading").local()

    def login(email: str) -> int:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        return session.post(f"{url}/v1/auth/login", json={"email": email, "password": PASSWORD,
                                                          "device_name": "bench"}, timeout=30).status_code

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(login, emails[:4]))  # warm-up
        started = time.perf_counter()
        codes = list(pool.map(login, emails))
        elapsed = time.perf_counter() - started
    return len(emails) / elapsed, sum(code != 200 for code in codes)


def me_p99_idle_and_during_logins(url: str, emails: list[str], clients: int) -> tuple[Load, Load]:
    """/v1/me under a steady reader: alone, then while sign-ins run for the whole window."""
    import threading

    import requests

    token = requests.post(f"{url}/v1/auth/login", json={"email": emails[0], "password": PASSWORD},
                          timeout=30).json()["access_token"]
    header = f"Authorization: Bearer {token}"
    idle = wrk(f"{url}/v1/me", header, SECONDS, ME_CONNECTIONS)
    done = threading.Event()

    def keep_signing_in() -> None:
        while not done.is_set():
            login_rate(url, emails[:40], clients)

    signing_in = threading.Thread(target=keep_signing_in)
    signing_in.start()
    try:
        time.sleep(0.5)  # the sign-ins are under way before the reader starts
        during = wrk(f"{url}/v1/me", header, SECONDS, ME_CONNECTIONS)
    finally:
        done.set()
        signing_in.join()
    return idle, during


def prepare(env: dict[str, str]) -> tuple[list[str], list[str]]:
    """Migrate, create the 200 users; return their emails and stored hashes."""
    from flask_migrate import upgrade

    from backend.app import create_app
    from backend.auth.models import User
    from backend.auth.passwords import hash_password
    from backend.common.db import utcnow
    from backend.extensions import db

    app = create_app({k: env[k] for k in ("ENV", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "JWT_PRIVATE_KEYS")}
                     | {"LOG_JSON": False})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        users = [User(email=f"bench{i}@example.test", password_hash=hash_password(PASSWORD),
                      email_verified_at=utcnow()) for i in range(USERS)]
        db.session.add_all(users)
        db.session.commit()
        emails, hashes = [u.email for u in users], [u.password_hash for u in users]
        db.engine.dispose()
    return emails, hashes


def main() -> int:
    """Run the interleaved measurements, print the row, write the B2 section of bench/RESULTS-auth.md."""
    from tests.services import discover

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2 * (os.cpu_count() or 1), help="client threads")
    parser.add_argument("--reps", type=int, default=REPS, help="interleaved repetitions (median)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS-auth.md alone")
    args = parser.parse_args()
    load_start = os.getloadavg()
    run_dir = ROOT / "bench" / "out" / f"b2-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True)
    services = discover()
    server = None
    try:
        env = production_env(services.create_database(), services.redis_url, run_dir)
        env["AUTH_LOGIN_LIMIT_PER_IP"] = "1000000"  # every sign-in comes from 127.0.0.1 here
        emails, hashes = prepare(env)
        server = start_gunicorn("wsgi:app", run_dir / "groundwork", env=env, port=next_port())
        logins, raws, failures = [], [], 0
        for _ in range(args.reps):
            rate, failed = login_rate(server.url, emails, args.clients)
            logins.append(rate)
            failures += failed
            raws.append(raw_verify_rate(hashes))
        if not install_wrk():
            print("wrk is needed for the /v1/me p99 rows (apt-get install wrk)", file=sys.stderr)
            return 1
        idle, during = me_p99_idle_and_during_logins(server.url, emails, args.clients)
    finally:
        if server is not None:
            server.stop()
        services.close()
    login, raw = statistics.median(logins), statistics.median(raws)
    ratio = login / raw
    row = result_row(f"B2 POST /v1/auth/login, {USERS} users", f"{login:.1f} logins/s",
                     f"{raw:.1f} verifies/s (raw Argon2id, m=19 MiB t=2 p=1)", ratio, f"≥ {TARGET}×",
                     failures == 0 and ratio >= TARGET)
    p99_ratio = during.p99_ms / idle.p99_ms
    p99_row = result_row(f"B2 /v1/me p99 while logins run ({ME_CONNECTIONS} conns)",
                         f"{during.p99_ms:.1f} ms ({during.rps:,.0f} req/s)",
                         f"{idle.p99_ms:.1f} ms idle ({idle.rps:,.0f} req/s)", p99_ratio, "≤ 2×",
                         idle.errors == during.errors == 0 and p99_ratio <= 2)
    table = f"{table_header()}\n{row}\n{p99_row}"
    print(table)
    one, five, fifteen = os.getloadavg()
    body = (f"{table}\n\nEach rep: logins/s {', '.join(f'{x:.1f}' for x in logins)}; raw verifies/s "
            f"{', '.join(f'{x:.1f}' for x in raws)}; non-200 logins {failures}. Client: requests, "
            f"{args.clients} threads; baseline: {os.cpu_count()} processes. gunicorn: production config, "
            f"ENV=production. Load average at the start: {' / '.join(f'{x:.1f}' for x in load_start)}; "
            f"at the end: {one:.1f} / {five:.1f} / {fifteen:.1f}.\n\n"
            f"Run: `.venv/bin/python -m bench.b2_login` (logs under {run_dir.relative_to(ROOT)}/).")
    print(body)
    if not args.no_write:
        write_section(RESULTS, "B2: login vs raw Argon2id verify", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
