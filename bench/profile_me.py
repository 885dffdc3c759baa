"""CPU per request of ``GET /v1/me`` (cached, uncached) and ``POST /v1/auth/login``, in-process.

wrk figures on a shared machine swing with everyone else's load; the CPU one request
costs this process does not. Each target is driven through its WSGI callable (the same
callable gunicorn calls, ProxyFix included) with a prepared environ, and
``time.process_time()`` over N requests gives CPU per request. Baselines in the same
run: bench/hello_app.py (B1 cached bar), the bare one-row SQLAlchemy Core app (B1
uncached bar), and one raw Argon2id verify (B2 bar). PostgreSQL's and Redis's own CPU
are not in these figures (other processes); their round trips show in the wall time.

    .venv/bin/python -m bench.profile_me                    # the CPU table
    .venv/bin/python -m bench.profile_me --profile "me cached"   # plus a cProfile of one target
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.b1_baseline import production_env  # noqa: E402 - after the path line above

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Any]


def environ_for(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> dict[str, Any]:
    """A WSGI environ as gunicorn would build it for a loopback request behind nginx."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000", "RAW_URI": path,
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_USER_AGENT": "profile_me", "HTTP_ACCEPT": "*/*",
        "HTTP_X_FORWARDED_FOR": "127.0.0.1",
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    environ["_body"] = body
    return environ


def call(app: Wsgi, template: dict[str, Any]) -> str:
    """One request through ``app``; returns the status line (body consumed, iterable closed)."""
    environ = dict(template)
    environ["wsgi.input"] = io.BytesIO(template["_body"])
    status: list[str] = []

    def start_response(line: str, headers: list, exc_info: Any = None) -> None:  # noqa: ARG001
        status.append(line)

    result = app(environ, start_response)
    try:
        for _ in result:
            pass
    finally:
        if hasattr(result, "close"):
            result.close()
    return status[0]


def cpu_per_request(app: Wsgi, template: dict[str, Any], n: int, expect: str) -> tuple[float, float]:
    """(CPU ms, wall ms) per request over ``n`` requests after a warm-up."""
    for _ in range(min(50, n)):
        got = call(app, template)
        if not got.startswith(expect):
            raise RuntimeError(f"{template['REQUEST_METHOD']} {template['PATH_INFO']} answered {got}")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        call(app, template)
    return (time.process_time() - cpu0) * 1000 / n, (time.perf_counter() - wall0) * 1000 / n


def build(env: dict[str, str]) -> dict[str, tuple[Wsgi, dict[str, Any], int, str]]:
    """The targets: name → (WSGI app, environ, requests to time, expected status)."""
    from bench.b1_me import create_one_row_app, prepare
    from bench.b2_login import PASSWORD
    from bench.hello_app import app as hello

    os.environ.update(env)  # this process only: create_app reads its settings from the environment
    user_id, token = prepare(env)
    os.environ["BENCH_USER_ID"] = user_id
    from backend.app import create_app
    from backend.auth.models import User
    from backend.auth.passwords import hash_password
    from backend.common.db import utcnow
    from backend.extensions import db

    cached = create_app({"ACCESS_TOKEN_TTL_S": 3600, "AUTH_LOGIN_LIMIT_PER_IP": 1_000_000})
    uncached = create_app({"ACCESS_TOKEN_TTL_S": 3600, "AUTH_STATE_CACHE_TTL_S": 0})
    with cached.app_context():
        db.session.add(User(email="login@example.test", password_hash=hash_password(PASSWORD),
                            email_verified_at=utcnow()))
        db.session.commit()
    auth = {"Authorization": f"Bearer {token}"}
    login = json.dumps({"email": "login@example.test", "password": PASSWORD, "device_name": "bench"}).encode()
    return {
        "hello": (hello, environ_for("GET", "/hello", {}), 3000, "200"),
        "me cached": (cached, environ_for("GET", "/v1/me", auth), 2000, "200"),
        "one row": (create_one_row_app(), environ_for("GET", "/row", {}), 2000, "200"),
        "me uncached": (uncached, environ_for("GET", "/v1/me", auth), 1000, "200"),
        "login": (cached, environ_for("POST", "/v1/auth/login", {}, login), 40, "200"),
    }


def raw_verify_ms(n: int = 40) -> float:
    """CPU ms of one Argon2id verify with the parameters backend.auth.passwords uses."""
    from backend.auth.passwords import hash_password, verify_password
    from bench.b2_login import PASSWORD

    stored = hash_password(PASSWORD)
    verify_password(stored, PASSWORD)
    cpu0 = time.process_time()
    for _ in range(n):
        verify_password(stored, PASSWORD)
    return (time.process_time() - cpu0) * 1000 / n


def main() -> int:
    """Print CPU per request for each target (and a cProfile of one when asked)."""
    from tests.services import discover

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", help="cProfile this target (e.g. 'me cached')")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the request counts")
    args = parser.parse_args()
    services = discover()
    try:
        with tempfile.TemporaryDirectory() as run_dir:
            env = production_env(services.create_database(), services.redis_url, Path(run_dir))
            targets = build(env)
            figures = {}
            for name, (app, template, n, expect) in targets.items():
                figures[name] = cpu_per_request(app, template, max(5, int(n * args.scale)), expect)
            raw = raw_verify_ms()
            if args.profile:
                app, template, n, _ = targets[args.profile]
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(n):
                    call(app, template)
                profiler.disable()
                stats = pstats.Stats(profiler).sort_stats("cumulative")
                stats.print_stats(45)
                pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    finally:
        services.close()
    print("| target | CPU ms/request | wall ms/request | requests/CPU-second |")
    print("|---|---|---|---|")
    for name, (cpu, wall) in figures.items():
        print(f"| {name} | {cpu:.3f} | {wall:.3f} | {1000 / cpu:,.0f} |")
    print(f"| raw Argon2id verify | {raw:.3f} | — | {1000 / raw:,.1f} |")
    hello, me, row, unc = figures["hello"][0], figures["me cached"][0], figures["one row"][0], figures["me uncached"][0]
    print(f"\nCPU ratios (the throughput a CPU-bound server could reach): me cached / hello {hello / me:.2f}×, "
          f"me uncached / one row {row / unc:.2f}×, login / raw verify {raw / figures['login'][0]:.2f}×")
    print(f"load average: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
