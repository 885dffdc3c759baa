"""B13: the live inbox with thousands of open streams, and the API beside it.

Real processes on loopback, production settings: gunicorn (``wsgi:app``) and the stream
server (``python -m backend.streams``) on a fresh database and Redis; one user and one
session per stream. Steps, each bounded in time:

1. ``GET /v1/me`` p99 with no stream open (wrk, 16 connections, median of 3): idle.
2. A client process (``python -m bench.b13_streams client``, asyncio + aiohttp) opens
   ``--streams`` streams, ramped, and keeps them open for ``--hold`` seconds (a stream
   that reaches its lifetime reconnects with Last-Event-ID, as apps do).
3. With all open: the stream server's memory (RSS growth / streams), ``GET /v1/me`` p99
   again, then ``--events`` inbox events announced on Redis (``inbox.announce``, as the
   send paths do) to random users; the client times each from publish to receipt.
4. The client exits at its deadline; its counts (opened, reconnects, errors, latencies)
   and the rows go to ``bench/RESULTS-b13.md``.

    .venv/bin/python -m bench.b13_streams                       # 10,000 streams (the lead's run)
    .venv/bin/python -m bench.b13_streams --streams 1000 --hold 40 --events 200   # a dry run

File descriptors: the stream server needs one per open stream plus ~100, the client the
same; the harness raises its soft ``RLIMIT_NOFILE`` to the hard limit (children inherit)
and refuses to start when the hard limit is below streams + 1,024.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.b1_baseline import load_average, production_env  # noqa: E402 - after the path line above
from bench.b1_me import wrk  # noqa: E402
from bench.common import REPS, ROOT, median_load, result_row, start_gunicorn, table_header, write_results  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS-b13.md"
ME_RATIO_TARGET, LATENCY_TARGET_MS = 2.0, 1000.0
STREAM_PATH = "/v1/notifications/inbox/stream"
FD_MARGIN = 1024


def raise_fd_limit(streams: int) -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; refuse when even that cannot hold the streams."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < streams + FD_MARGIN:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} < {streams} streams + {FD_MARGIN}: raise it "
                         "(ulimit -Hn, LimitNOFILE=, or the container's nofile ulimit)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def prepare(env: dict[str, str], count: int) -> list[tuple[str, str]]:
    """Migrate, then make ``count`` users with one session each: [(user id, access token)].

    In bulk: one statement inserts the users (``SELECT ... generate_series``) and their sessions, and
    the access tokens signed in this process (what a sign-in returns, without its 10,000 commits);
    the stream server checks each session against these rows exactly as after a real sign-in.
    """
    from flask_migrate import upgrade
    from sqlalchemy import text

    from backend.app import create_app
    from backend.auth.tokens import issue_access_token
    from backend.common.db import utcnow
    from backend.config import load_config
    from backend.extensions import db

    app = create_app(load_config(env))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        now = utcnow()
        rows = db.session.execute(text(
            "WITH made AS (INSERT INTO users (id, email, email_verified_at, role, status, last_active_at) "
            "SELECT gen_random_uuid(), 'b13-' || gen_random_uuid() || '@example.test', :now, 'user', 'active', :now "
            "FROM generate_series(1, :count) RETURNING id) "
            "INSERT INTO sessions (id, user_id, device_name, platform, ip, user_agent, created_at, last_used_at, "
            "expires_at) SELECT gen_random_uuid(), made.id, 'b13', 'ios', '127.0.0.1', 'b13', :now, :now, "
            ":now + make_interval(secs => :ttl) FROM made RETURNING user_id, id"),
            {"now": now, "count": count, "ttl": app.config["REFRESH_TOKEN_TTL_S"]}).all()
        db.session.commit()
        holders = [(str(user_id), issue_access_token(user_id=user_id, session_id=session_id, role="user",
                                                     token_version=0, issued_at=now, jti=uuid.uuid4()))
                   for user_id, session_id in rows]
        db.session.remove()
        db.engine.dispose()
    return holders


def rss_kib(pid: int) -> int:
    """Resident memory of one process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_stream_server(run_dir: Path, env: dict[str, str]):  # noqa: ANN201 - tests' Server
    from tests.e2e.processes import start_stream_server as start

    return start(run_dir, env=env)


def announce_events(env: dict[str, str], holders: list[tuple[str, str]], events: int, rate: float) -> None:
    """Publish ``events`` inbox events to random users at ``rate``/s, the way the send paths announce."""
    import redis

    from backend.notifications import inbox

    connection = redis.Redis.from_url(env["REDIS_URL"])
    start = time.monotonic()
    for n in range(events):
        user_id, _ = random.choice(holders)
        payload = {"id": str(uuid.uuid4()), "title": f"b13 {n}", "bench_sent_at": time.time()}
        inbox.announce(connection, [(uuid.UUID(user_id), payload)])
        time.sleep(max(0.0, start + (n + 1) / rate - time.monotonic()))
    connection.close()


def run(args: argparse.Namespace) -> int:
    """The parent: servers, the idle and loaded measurements, the client, the rows."""
    from tests.services import discover

    hard = raise_fd_limit(args.streams)
    load_at_start = load_average()
    run_dir = ROOT / "bench" / "out" / f"b13-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir.mkdir(parents=True)
    services = discover()
    started = []
    try:
        env = production_env(services.create_database(), services.redis_url, run_dir)
        env.update(INBOX_STREAM_LIFETIME_S=str(args.lifetime), INBOX_STREAM_HEARTBEAT_S=str(args.heartbeat),
                   LOG_LEVEL="WARNING")
        print(f"b13: {args.streams} users and sessions", flush=True)
        holders = prepare(env, args.streams)
        (run_dir / "holders.json").write_text(json.dumps(holders))
        web = start_gunicorn("wsgi:app", run_dir / "web", env=env)
        started.append(web)
        streams = start_stream_server(run_dir / "streams", env)
        started.append(streams)
        me_url, bearer = f"{web.url}/v1/me", f"Authorization: Bearer {holders[0][1]}"
        wrk(me_url, bearer, seconds=1)  # warm up
        idle = median_load([wrk(me_url, bearer) for _ in range(REPS)])
        rss_before = rss_kib(streams.process.pid)
        print(f"b13: idle /v1/me p99 {idle.p99_ms:.1f} ms; opening {args.streams} streams", flush=True)

        client = subprocess.Popen(
            [sys.executable, "-m", "bench.b13_streams", "client", "--url", streams.url + STREAM_PATH,
             "--holders", str(run_dir / "holders.json"), "--hold", str(args.hold),
             "--report", str(run_dir / "client.json")],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        opened_at = None
        for line in client.stdout:  # "open <n>" lines, then "all open"
            print(f"b13 client: {line.rstrip()}", flush=True)
            if line.startswith("all open"):
                opened_at = time.monotonic()
                break
        if opened_at is None:
            raise SystemExit("the client ended before all streams were open")
        rss_open = rss_kib(streams.process.pid)
        loaded = median_load([wrk(me_url, bearer) for _ in range(REPS)])
        rss_open = max(rss_open, rss_kib(streams.process.pid))
        print(f"b13: /v1/me p99 with streams open {loaded.p99_ms:.1f} ms; announcing {args.events} events",
              flush=True)
        announce_events(env, holders, args.events, args.rate)
        for line in client.stdout:
            print(f"b13 client: {line.rstrip()}", flush=True)
        client.wait(args.hold + 120)
        report = json.loads((run_dir / "client.json").read_text())
    finally:
        for server in reversed(started):
            server.stop()
        services.close()

    latencies = sorted(report["latencies_ms"])
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("inf")
    p50 = statistics.median(latencies) if latencies else float("inf")
    late = sum(ms > LATENCY_TARGET_MS for ms in latencies)
    beats = {int(bucket): n for bucket, n in report.get("beats", {}).items()}
    in_burst = sum(any(beats.get(b, 0) for b in range(int(sent * 10) - 5, int((sent + ms / 1000) * 10) + 1))
                   for sent, ms in report.get("late", []))
    ratio = loaded.p99_ms / idle.p99_ms
    per_stream = (rss_open - rss_before) / args.streams
    rows = [table_header(),
            result_row(f"B13 GET /v1/me p99 with {args.streams:,} streams open", f"{loaded.p99_ms:.1f} ms",
                       f"{idle.p99_ms:.1f} ms with none open", ratio, f"≤ {ME_RATIO_TARGET:.0f}× idle",
                       ratio <= ME_RATIO_TARGET and loaded.errors == 0),
            result_row("B13 publish → receive p99", f"{p99:.0f} ms (p50 {p50:.0f} ms)",
                       f"{len(latencies)} of {args.events} events received", None,
                       f"≤ {LATENCY_TARGET_MS:.0f} ms", p99 <= LATENCY_TARGET_MS and len(latencies) == args.events),
            result_row("B13 memory per open stream (stream server RSS)", f"{per_stream:.1f} KiB",
                       f"{rss_before / 1024:.0f} → {rss_open / 1024:.0f} MiB", None, "reported", None)]
    body = "\n".join([
        *rows, "",
        f"Streams opened {report['opened']:,} (peak open {report['peak_open']:,}), reconnects after the lifetime "
        f"{report['reconnects']:,}, errors {report['errors']:,} ({', '.join(report['error_kinds'][:5]) or 'none'}); "
        f"hold {args.hold:.0f} s, lifetime {args.lifetime:.0f} s, heartbeat {args.heartbeat:.0f} s; "
        f"/v1/me by wrk, 16 connections, median of {REPS}, errors idle {idle.errors} / open {loaded.errors}; "
        f"RLIMIT_NOFILE {hard}; events later than {LATENCY_TARGET_MS:.0f} ms {late}, slowest "
        f"{(latencies[-1] if latencies else 0):.0f} ms, {in_burst} of them sent within 0.5 s before or during a "
        f"burst of heartbeat frames at the client; load average at start {load_at_start}, at the end "
        f"{load_average()}. Rerun: `flock /tmp/groundwork-heavy.lock .venv/bin/python -m bench.b13_streams"
        f" --streams {args.streams} --hold {args.hold:.0f} --events {args.events}`.",
    ])
    print(body)
    write_results(RESULTS, "B13: the live inbox, open streams beside the API", body)
    return 0


# --- the client process ---------------------------------------------------------------------


async def _hold_stream(session, url: str, token: str, deadline: float, state: dict) -> None:  # noqa: ANN001
    last_id = None
    opened_once = False
    while time.monotonic() < deadline:
        headers = {"Authorization": f"Bearer {token}"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        try:
            async with session.get(url, headers=headers) as response:
                if response.status != 200:
                    state["errors"] += 1
                    state["error_kinds"].add(f"HTTP {response.status}")
                    await asyncio.sleep(1)
                    continue
                state["open"] += 1
                state["peak_open"] = max(state["peak_open"], state["open"])
                if opened_once:
                    state["reconnects"] += 1
                else:
                    opened_once = True
                    state["opened"] += 1
                try:
                    frame: dict[str, str] = {}
                    async for raw in response.content:
                        line = raw.decode().rstrip("\n")
                        if line.startswith(": heartbeat"):  # when the beats arrive, to place the late events
                            bucket = str(int(time.time() * 10))
                            state["beats"][bucket] = state["beats"].get(bucket, 0) + 1
                            continue
                        if line:
                            field, _, value = line.partition(":")
                            frame[field] = value.lstrip(" ")
                            continue
                        if frame.get("event") == "notification":
                            payload = json.loads(frame["data"])
                            last_id = frame.get("id", last_id)
                            if "bench_sent_at" in payload:
                                took_ms = (time.time() - payload["bench_sent_at"]) * 1000
                                state["latencies_ms"].append(took_ms)
                                if took_ms > LATENCY_TARGET_MS:
                                    state["late"].append((payload["bench_sent_at"], took_ms))
                        frame = {}
                        if time.monotonic() >= deadline:
                            return
                finally:
                    state["open"] -= 1
        except (TimeoutError, OSError, ValueError, aiohttp.ClientError) as exc:
            state["errors"] += 1
            state["error_kinds"].add(type(exc).__name__)
            await asyncio.sleep(1)


async def _client(url: str, holders: list[tuple[str, str]], hold_s: float, report: Path) -> None:
    deadline = time.monotonic() + hold_s
    state = {"open": 0, "peak_open": 0, "opened": 0, "reconnects": 0, "errors": 0, "error_kinds": set(),
             "latencies_ms": [], "late": [], "beats": {}}
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        for n, (_, token) in enumerate(holders):
            tasks.append(asyncio.create_task(_hold_stream(session, url, token, deadline, state)))
            if n % 200 == 199:  # ramp: a burst of handshakes would overflow the listen backlog
                await asyncio.sleep(0.05)
        reported = 0
        while state["opened"] < len(holders) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            if state["opened"] - reported >= 1000:
                reported = state["opened"]
                print(f"open {state['opened']}", flush=True)
        print(f"all open: {state['opened']} of {len(holders)}" if state["opened"] == len(holders)
              else f"not all open by the deadline: {state['opened']}", flush=True)
        await asyncio.gather(*tasks, return_exceptions=True)
    state["error_kinds"] = sorted(state["error_kinds"])
    report.write_text(json.dumps(state))
    print(f"done: {state['opened']} opened, {state['reconnects']} reconnects, {state['errors']} errors, "
          f"{len(state['latencies_ms'])} events", flush=True)


def client_main(args: argparse.Namespace) -> int:
    raise_fd_limit(0)
    holders = json.loads(Path(args.holders).read_text())
    asyncio.run(_client(args.url, holders, args.hold, Path(args.report)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.b13_streams", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="role")
    client = sub.add_parser("client", help="(internal) hold the streams")
    client.add_argument("--url", required=True)
    client.add_argument("--holders", required=True)
    client.add_argument("--hold", type=float, required=True)
    client.add_argument("--report", required=True)
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--hold", type=float, default=90.0, help="seconds the client keeps the streams open")
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="events announced per second")
    parser.add_argument("--lifetime", type=float, default=55.0)
    parser.add_argument("--heartbeat", type=float, default=15.0)
    args = parser.parse_args(argv)
    return client_main(args) if args.role == "client" else run(args)


if __name__ == "__main__":
    sys.exit(main())
