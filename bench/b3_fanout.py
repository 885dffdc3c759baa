"""B3, transport part: FcmSender vs a bare aiohttp loop to a fake FCM answering after 40 ms.

The fake FCM server (tests/fakes/fcm_server.py) runs in its own process on loopback, so
``time.process_time()`` of this process is the sending client's CPU alone. Runs are
interleaved (who goes first alternates) × 5 and the medians compared. pyfcm's own async path
is measured for the record on a capped count (it opens one connection per message and
fails outright at 20k with "Too many open files"). A last run injects 1% random 429/503
and resends what came back unsent, as the campaign job will, then checks on the server
that every message arrived exactly once. The full B3 goes through an RQ worker later.

    .venv/bin/python bench/b3_fanout.py    # prints the rows, writes bench/RESULTS-b3.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

import aiohttp  # noqa: E402
import google.auth.transport.requests  # noqa: E402
from google.oauth2 import service_account  # noqa: E402
from pyfcm import FCMNotification  # noqa: E402

from backend.notifications.fcm.client import FcmSender, Outcome, OutgoingMessage  # noqa: E402
from bench.common import ROOT, result_row, table_header, write_results  # noqa: E402
from tests.fakes.fcm_server import FakeFcmControl, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS-b3.md"
IN_FLIGHT = 500
RATIO_TARGET = 0.7
CPU_TARGET_MS = 0.3


@dataclass(frozen=True)
class Run:
    """One bounded send of ``count`` messages."""

    count: int
    sent: int
    wall_s: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.count / self.wall_s

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s / self.count * 1000


def timed(count: int, send: Callable[[], int]) -> Run:
    """Wall and process CPU time of one send of ``count`` messages; ``send`` returns how many got 200."""
    wall, cpu = time.perf_counter(), time.process_time()
    sent = send()
    return Run(count, sent, time.perf_counter() - wall, time.process_time() - cpu)


def outgoing(count: int, prefix: str) -> list[OutgoingMessage]:
    """Campaign-like messages: one device token each, a title, a body and two data keys."""
    return [
        OutgoingMessage(
            key=f"{prefix}:{i}",
            token=f"{prefix}-device-{i:06d}",
            title="Weekend sale",
            body="Everything 20% off until Sunday",
            data={"campaign_id": "42", "deeplink": f"app://offers/{i}"},
        )
        for i in range(count)
    ]


def run_groundwork(sender: FcmSender, messages: list[OutgoingMessage]) -> int:
    """Groundwork's path: FcmSender.send_batch (builds bodies with pyfcm, pooled session)."""
    return sum(result.outcome is Outcome.SENT for result in sender.send_batch(messages))


def run_bare(url: str, token: str, messages: list[OutgoingMessage]) -> int:
    """The baseline: a bare aiohttp loop, one session, IN_FLIGHT requests at once."""

    async def main() -> int:
        sent = 0
        pending = iter(messages)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                nonlocal sent
                for m in pending:
                    body = {"token": m.token, "notification": {"title": m.title, "body": m.body}, "data": m.data}
                    async with session.post(url, data=json.dumps({"message": body}), headers=headers) as response:
                        await response.read()
                        sent += response.status == 200

            await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        return sent

    return asyncio.run(main())


def run_pyfcm(client: FCMNotification, messages: list[OutgoingMessage]) -> int:
    """pyfcm 2.1's own async path (one aiohttp session, i.e. one connection, per message)."""
    params = [
        {"fcm_token": m.token, "notification_title": m.title, "notification_body": m.body, "data_payload": m.data}
        for m in messages
    ]
    answers = client.async_notify_multiple_devices(params, timeout=30)
    return sum("name" in answer for answer in answers)


def run_with_errors(sender: FcmSender, control: FakeFcmControl, count: int) -> dict[str, object]:
    """1% random 429/503: resend whatever came back unsent after its Retry-After, as the job will."""
    control.reset()
    control.configure(error_rate=0.01, seed=3, retry_after_s=1, record_messages=True)
    messages = {m.key: m for m in outgoing(count, "err")}
    pending, sent_keys, rounds, outcomes = list(messages.values()), Counter(), 0, Counter()
    started = time.perf_counter()
    while pending and rounds < 20:
        rounds += 1
        results = sender.send_batch(pending)
        outcomes.update(r.outcome.value for r in results)
        sent_keys.update(r.key for r in results if r.outcome is Outcome.SENT)
        unsent = [r for r in results if r.outcome is not Outcome.SENT]
        pending = [messages[r.key] for r in unsent]
        if pending:  # the caller (RQ scheduler) waits Retry-After; the sender never does
            time.sleep(max((r.retry_after or 0.0) for r in unsent))
    elapsed = time.perf_counter() - started
    delivered = Counter(m["token"] for m in control.messages())
    counters = control.stats()["counters"]
    control.reset()
    return {
        "rounds": rounds,
        "elapsed_s": elapsed,
        "outcomes": dict(outcomes),
        "lost": sum(1 for m in messages.values() if delivered[m.token] == 0),
        "doubled": sum(1 for n in delivered.values() if n > 1),
        "each_key_sent_once": sent_keys == Counter(messages.keys()),
        "server_errors": {k: v for k, v in counters.items() if k in ("QUOTA_EXCEEDED", "UNAVAILABLE")},
        "send_requests": counters.get("send_requests", 0),
    }


def start_fake(port: int, credentials: Path, latency_ms: float, log: Path) -> subprocess.Popen[bytes]:
    """The fake FCM server in its own process (so its CPU is not the client's)."""
    command = [sys.executable, "-m", "tests.fakes.fcm_server", "--port", str(port)]
    command += ["--write-credentials", str(credentials), "--latency-ms", str(latency_ms), "--no-record"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    control = FakeFcmControl(f"http://127.0.0.1:{port}")
    for _ in range(100):
        try:
            control.stats()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"fake FCM did not start; see {log}")


def main() -> int:
    """Run B3's transport benchmark, print the rows and write bench/RESULTS-b3.md."""
    parser = argparse.ArgumentParser(description="B3 transport: FcmSender vs bare aiohttp")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--pyfcm-messages", type=int, default=2_000)
    parser.add_argument("--error-messages", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="b3-") as tmp:
        port, credentials = free_port(), Path(tmp) / "fcm-service-account.json"
        server = start_fake(port, credentials, args.latency_ms, Path(tmp) / "fake-fcm.log")
        try:
            base = f"http://127.0.0.1:{port}"
            project_id = json.loads(credentials.read_text())["project_id"]
            control = FakeFcmControl(base, credentials, project_id)
            sender = FcmSender(
                str(credentials), project_id, endpoint_base=f"{base}/v1/projects", max_in_flight=IN_FLIGHT
            )
            sender.send_batch(outgoing(10, "warm"))  # token fetched once, as a long-lived worker has it
            creds = service_account.Credentials.from_service_account_file(
                str(credentials), scopes=["https://www.googleapis.com/auth/firebase.messaging"]
            )
            creds.refresh(google.auth.transport.requests.Request())
            url = f"{base}/v1/projects/{project_id}/messages:send"

            class LocalFCM(FCMNotification):
                FCM_END_POINT_BASE = f"{base}/v1/projects"

            pyfcm_client = LocalFCM(service_account_file=str(credentials), project_id=project_id)

            ours, bare, pyfcm_runs = [], [], []
            for rep in range(args.reps):
                batch = outgoing(args.messages, f"r{rep}")
                pair = [
                    (ours, lambda b=batch: run_groundwork(sender, b)),
                    (bare, lambda b=batch: run_bare(url, creds.token, b)),
                ]
                for runs, send in pair if rep % 2 == 0 else pair[::-1]:  # alternate who goes first
                    time.sleep(1)  # let the server settle (closing sockets) between runs
                    runs.append(timed(args.messages, send))
                print(f"rep {rep + 1}: groundwork {ours[-1].rate:,.0f}/s, bare {bare[-1].rate:,.0f}/s", flush=True)
            for rep in range(args.reps):  # after the main runs: its thousands of sockets skew what follows
                time.sleep(1)
                small = outgoing(args.pyfcm_messages, f"p{rep}")
                pyfcm_runs.append(timed(args.pyfcm_messages, lambda b=small: run_pyfcm(pyfcm_client, b)))
                print(f"pyfcm rep {rep + 1} ({args.pyfcm_messages}): {pyfcm_runs[-1].rate:,.0f}/s", flush=True)
            errors = run_with_errors(sender, control, args.error_messages)
        finally:
            server.terminate()
            server.wait(10)

    def med(runs: list[Run], attr: str) -> float:
        return statistics.median(getattr(run, attr) for run in runs)

    our_rate, bare_rate, pyfcm_rate = med(ours, "rate"), med(bare, "rate"), med(pyfcm_runs, "rate")
    our_cpu, bare_cpu, pyfcm_cpu = med(ours, "cpu_ms"), med(bare, "cpu_ms"), med(pyfcm_runs, "cpu_ms")
    ratio = our_rate / bare_rate
    all_sent = all(r.sent == r.count for r in ours + bare)
    holds = ratio >= RATIO_TARGET and our_cpu <= CPU_TARGET_MS and all_sent
    exact = errors["lost"] == 0 and errors["doubled"] == 0 and errors["each_key_sent_once"]
    rows = [
        table_header(),
        result_row(
            f"B3 transport: {args.messages:,} msgs, fake FCM +{args.latency_ms:g} ms",
            f"{our_rate:,.0f} msg/s, {our_cpu:.3f} ms CPU/msg",
            f"{bare_rate:,.0f} msg/s, {bare_cpu:.3f} ms CPU/msg (bare aiohttp, {IN_FLIGHT} in flight)",
            ratio,
            f"≥ {RATIO_TARGET}× and ≤ {CPU_TARGET_MS} ms CPU/msg",
            holds,
        ),
        result_row(
            f"B3 transport: 1% random 429/503, {args.error_messages:,} msgs, caller resends",
            f"lost {errors['lost']}, doubled {errors['doubled']}, {errors['rounds']} rounds",
            "—",
            None,
            "every message once, none lost or doubled",
            exact,
        ),
        result_row(
            f"context: pyfcm 2.1 async path, {args.pyfcm_messages:,} msgs (capped)",
            f"{pyfcm_rate:,.0f} msg/s, {pyfcm_cpu:.3f} ms CPU/msg",
            f"{bare_rate:,.0f} msg/s (bare aiohttp)",
            pyfcm_rate / bare_rate,
            "context only",
            None,
        ),
    ]
    paired = ", ".join(f"{o.rate / b.rate:.2f}×" for o, b in zip(ours, bare, strict=True))
    each = "\n".join(
        f"| {name} | {', '.join(f'{r.rate:,.0f}' for r in runs)} | "
        f"{', '.join(f'{r.cpu_ms:.3f}' for r in runs)} | {sum(r.sent for r in runs):,}/{sum(r.count for r in runs):,} |"
        for name, runs in (("groundwork FcmSender", ours), ("bare aiohttp", bare), ("pyfcm async", pyfcm_runs))
    )
    body = "\n".join(rows) + (
        "\n\n## Each repetition\n\n| run | msg/s | ms CPU/msg | sent/attempted |\n|---|---|---|---|\n"
        f"{each}\n\nPaired ratios (groundwork / bare, same repetition): {paired}.\n\n## 1% random 429/503\n\n"
        f"Outcomes over all rounds: {errors['outcomes']}; server answered {errors['server_errors']} "
        f"out of {errors['send_requests']:,} send requests; {errors['elapsed_s']:.1f} s including the "
        "caller's Retry-After waits (1 s a round). 503s are retried inside the batch (≤ 2, jittered); "
        "429s are reported with retry_after and resent by the caller.\n\n"
        f"Fake FCM in its own process on loopback, answering after {args.latency_ms:g} ms; "
        f"client CPU is `time.process_time()` of the sending process / messages. Interleaved runs "
        "(alternating which goes first, 1 s pause between runs), "
        f"median of {args.reps}. pyfcm's async path is capped at {args.pyfcm_messages:,} messages: it "
        "opens one session (one connection) per message and sends all at once; at 20,000 it failed "
        "with `OSError(24, 'Too many open files')` after 54 s (ulimit -n 20000) and returned nothing. "
        f"Machine load when the run started: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.\n\n"
        "Run: `.venv/bin/python bench/b3_fanout.py`. This is the transport part; the full B3 sends "
        "through an RQ worker."
    )
    write_results(RESULTS, "B3 transport: FcmSender vs bare aiohttp", body)
    print("\n".join(rows))
    return 0 if holds and exact else 1


if __name__ == "__main__":
    sys.exit(main())
