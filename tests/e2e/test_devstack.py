"""``make run``'s embedded path, end to end: ``python -m backend.devstack`` with no
DATABASE_URL / REDIS_URL starts real PostgreSQL and Redis from the wheels under an instance
folder (here under tmp_path, never the developer's ./instance), gunicorn, a worker and the
scheduler; the printed demo credentials sign in to the API and the console; a job runs;
Ctrl-C stops every process it started; a second run finds the data (and the sessions)
again; a child dying on its own stops the whole stack with a non-zero status.

As root, pgserver runs postgres as its own `pgserver` system user: it chowns the data
folder to that user and adds go+rx to each parent folder so postgres can reach its data
and socket. /tmp/pytest-of-root is not such a parent: every pytest session that starts
resets it to 0700 (several run at once on this machine), which would lock the `pgserver`
user out mid-test. So tmp_path/instance is a link to a folder made in the system temp
folder, which stays traversable; the launcher and pgserver resolve the link, and the
folder is deleted afterwards. The launcher, gunicorn, worker and Redis run as the
test's user and need nothing.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg2
import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from backend.common.jobs import PendingJob, send_now
from tests.e2e.processes import ROOT, free_port
from tests.services import Services
from tests.streams.client import INBOX_STREAM_PATH, open_stream
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

READY_LINE = "Press Ctrl-C to stop everything."


@dataclass
class Stack:
    """One running ``python -m backend.devstack`` and what its banner said."""

    process: subprocess.Popen
    log_path: Path
    port: int
    banner: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def field(self, pattern: str) -> str:
        found = re.search(pattern, self.banner)
        assert found, f"{pattern!r} not in the banner:\n{self.banner}"
        return found.group(1)

    @property
    def credentials(self) -> tuple[str, str]:
        found = re.search(r"Demo staff admin\s+email: (\S+)\s+password: (\S+)", self.banner)
        assert found, self.banner
        return found.group(1), found.group(2)

    @property
    def database_url(self) -> str:
        return self.field(r"PostgreSQL \(embedded\): (\S+)")

    @property
    def redis_url(self) -> str:
        return self.field(r"Redis \(embedded\): (\S+)")

    def pids(self) -> dict[str, int]:
        """Every process of the stack: the named ones and all their descendants."""
        named = dict(re.findall(r"(\w+)=(\d+)", self.field(r"Processes\s+(.+)")))
        pids = {name: int(pid) for name, pid in named.items()}
        for name, pid in list(pids.items()) + [("devstack", self.process.pid)]:
            try:
                for number, child in enumerate(psutil.Process(pid).children(recursive=True)):
                    pids[f"{name}-child-{number}"] = child.pid
            except psutil.NoSuchProcess:
                pass
        return pids


def start_stack(instance: Path, run_dir: Path) -> Stack:
    """``python -m backend.devstack`` the way `make run` starts it, minus the service URLs."""
    env = {name: value for name, value in os.environ.items() if name not in {"DATABASE_URL", "REDIS_URL"}}
    port = free_port()
    env.update(PORT=str(port), STREAM_PORT=str(free_port()), GROUNDWORK_INSTANCE_DIR=str(instance),
               WEB_CONCURRENCY="2")
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "devstack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.devstack"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, like a terminal's foreground job
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if READY_LINE in text:
            banner = text[text.rindex("Groundwork is running") :]
            return Stack(process, log_path, port, banner)
        if process.poll() is not None:
            pytest.fail(f"devstack exited with {process.returncode} before serving:\n{text[-6000:]}")
        time.sleep(0.2)
    stop_stack(process)
    pytest.fail(f"devstack not ready after 90 s:\n{log_path.read_text(errors='replace')[-6000:]}")


def stop_stack(process: subprocess.Popen) -> int:
    """Ctrl-C as a terminal sends it (SIGINT to the foreground group); the exit status."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
    return process.wait(60)


def get(stack: Stack, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return call(urllib.request.Request(stack.url + path, headers=headers))


def post_json(stack: Stack, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        stack.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    status, _, answer = call(request)
    return status, json.loads(answer)


def call(request: urllib.request.Request) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def console_sign_in(stack: Stack, email: str, password: str) -> tuple[int, bytes]:
    """Sign in at /admin/login as a browser would (cookie, CSRF token); then /admin/."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect)

    def fetch(path: str, form: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with opener.open(urllib.request.Request(stack.url + path, data=data), timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    status, headers, _ = fetch("/admin/")
    assert status == 302 and "/admin/login" in headers["Location"], status
    status, _, page = fetch("/admin/login")
    assert status == 200, page[:500]
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token, page[:2000]
    form = {"email": email, "password": password, "csrf_token": token.group(1).decode()}
    status, headers, page = fetch("/admin/login", form)
    assert status == 302, page[:2000]
    status, _, page = fetch("/admin/")
    return status, page


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def run_job_and_wait(redis_url: str, func: str, queue: str, timeout: float = 30) -> Job:
    connection = redis.Redis.from_url(redis_url)
    job_id = f"devstack-test-{time.time_ns()}"
    send_now(PendingJob(func, queue, {}, job_id=job_id, retries=0, timeout=60), connection)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
        if job.get_status(refresh=True) in {"finished", "failed"}:
            return job
        time.sleep(0.1)
    pytest.fail(f"job {func} not run by the stack's worker within {timeout}s")


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Path]:
    """tmp_path/instance, linked to a folder the `pgserver` user can always reach (see above)."""
    real = Path(tempfile.mkdtemp(prefix="groundwork-devstack-"))
    link = tmp_path / "instance"
    link.symlink_to(real, target_is_directory=True)
    yield link
    shutil.rmtree(real, ignore_errors=True)


def test_devstack_without_service_urls_serves_on_embedded_services_and_stops_cleanly(
    tmp_path: Path, instance: Path
) -> None:
    stack = start_stack(instance, tmp_path / "run1")
    try:
        pids = stack.pids()
        assert {"gunicorn", "streams", "worker", "scheduler", "PostgreSQL", "Redis"} <= set(pids)
        folder = instance.resolve()
        assert stack.database_url.startswith("postgresql://") and str(folder) in stack.database_url
        assert stack.redis_url == f"unix://{folder}/redis/redis.sock"
        assert any(name.startswith("gunicorn-child") for name in pids), "gunicorn started no workers"

        status, _, body = get(stack, "/readyz")
        readiness = json.loads(body)
        assert status == 200, readiness
        assert readiness["checks"]["database"]["ok"] and readiness["checks"]["redis"]["ok"]

        status, headers, body = get(stack, "/docs")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert b"swagger-ui" in body.lower()
        status, _, body = get(stack, "/openapi.json")
        spec = json.loads(body)
        assert status == 200 and spec["openapi"].startswith("3.")
        assert "/v1/auth/login" in spec["paths"]
        status, headers, body = get(stack, "/v1/no-such-route", **{"X-Request-ID": "devstack-e2e"})
        assert status == 404 and json.loads(body)["error"]["request_id"] == "devstack-e2e"

        # The printed demo credentials sign in, as a verified admin.
        email, password = stack.credentials
        status, tokens = post_json(stack, "/v1/auth/login", {"email": email, "password": password})
        assert status == 200, tokens
        status, _, body = get(stack, "/v1/me", Authorization=f"Bearer {tokens['access_token']}")
        me = json.loads(body)
        assert status == 200 and me["role"] == "admin" and me["email"] == email, me
        # The inbox stream is the stream server's: gunicorn redirects a stream request there.
        stream_url = stack.field(r"Inbox stream\s+(\S+)")
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
        connection.request("GET", INBOX_STREAM_PATH, headers=bearer)
        redirected = connection.getresponse()
        connection.close()
        assert (redirected.status, redirected.getheader("Location")) == (307, stream_url)
        open_stream(stream_url.removesuffix(INBOX_STREAM_PATH), bearer).close()
        status, page = console_sign_in(stack, email, password)
        assert status == 200 and b"Groundwork" in page, page[:2000]

        # A developer reads account mails in this log: the worker prints each with its link.
        status, _ = post_json(stack, "/v1/auth/register", {"email": "dev-mail@example.test",
                                                           "password": "correct horse battery staple"})
        assert status == 202
        wait_for(lambda: re.search(r"mail to dev-mail@example\.test: Confirm your email address[\s\S]*?"
                                   r"/v1/auth/verify-email\?token=\S+", stack.log()),
                 timeout=30, what="the verification mail in the make run log")

        # Secrets are kept for the next run and readable only by their owner.
        secrets_file = instance / "dev-secrets.json"
        assert secrets_file.stat().st_mode & 0o777 == 0o600
        assert json.loads(secrets_file.read_text())["DEMO_STAFF_PASSWORD"] == stack.credentials[1]

        # A job sent to the stack's Redis runs in its worker against its PostgreSQL: an
        # expired Idempotency-Key record is purged, a fresh one stays (and must survive).
        with psycopg2.connect(stack.database_url) as conn, conn.cursor() as cursor:
            cursor.execute(
                "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES "
                "('devstack-test', 'old', 'x', now() - interval '30 days'), ('devstack-test', 'fresh', 'x', now())"
            )
        job = run_job_and_wait(stack.redis_url, "jobs.maintenance.purge_idempotency_keys", "periodic")
        assert job.get_status() == "finished", job.latest_result()
        assert rows(stack.database_url) == ["fresh"]
        redis.Redis.from_url(stack.redis_url).set("devstack-test:marker", "kept")
    finally:
        exit_code = stop_stack(stack.process)
    log = stack.log()
    assert exit_code == 0, log[-6000:]
    assert re.search(r"^devstack: [0-9:]+ stopped$", log, re.MULTILINE), log[-3000:]
    left = {name: pid for name, pid in pids.items() if alive(pid)}
    assert not left, f"processes left running after Ctrl-C: {left}\n{log[-3000:]}"

    # Second run on the same folder: same secrets, same data, no migration to apply, and
    # the access token from the first run still works (same signing key, same session).
    again = start_stack(instance, tmp_path / "run2")
    try:
        assert again.credentials == stack.credentials
        assert "demo staff admin admin@example.com: exists" in again.log()
        status, _, body = get(again, "/v1/me", Authorization=f"Bearer {tokens['access_token']}")
        assert status == 200 and json.loads(body)["email"] == email, body
        assert "Running upgrade" not in again.log()
        assert rows(again.database_url) == ["fresh"]
        assert redis.Redis.from_url(again.redis_url).get("devstack-test:marker") == b"kept"
        status, _, _ = get(again, "/readyz")
        assert status == 200
        second_pids = again.pids()
        # A child dying on its own takes the whole stack down, saying which one.
        os.kill(second_pids["worker"], signal.SIGKILL)
        exit_code = again.process.wait(60)
    finally:
        stop_stack(again.process)
    log = again.log()
    assert exit_code != 0, log[-6000:]
    assert f"worker (pid {second_pids['worker']}) was killed by SIGKILL unexpectedly" in log
    left = {name: pid for name, pid in second_pids.items() if alive(pid)}
    assert not left, f"processes left running after the worker died: {left}\n{log[-3000:]}"


def test_devstack_with_service_urls_uses_them_and_starts_nothing_embedded(tmp_path: Path, services: Services) -> None:
    instance = tmp_path / "instance"
    database_url = services.create_database()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": services.redis_url,
        "PORT": str(free_port()),
        "STREAM_PORT": str(free_port()),  # else PORT+1, which nobody checked was free
        "GROUNDWORK_INSTANCE_DIR": str(instance),
        "WEB_CONCURRENCY": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "backend.devstack", "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    # The devstack's own lines (why it stopped) are on stdout, the children's logs on stderr.
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
    readiness = json.loads(re.search(r"devstack: [0-9:]+ readyz (\{.*\})", output).group(1))
    assert readiness["status"] == "ready"
    assert f"PostgreSQL (DATABASE_URL): {database_url}" in output
    assert f"Redis (REDIS_URL): {services.redis_url}" in output
    assert not (instance / "postgres").exists() and not (instance / "redis").exists()
    with psycopg2.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT version_num FROM alembic_version")
        assert cursor.fetchone() is not None, "the migrations did not run on DATABASE_URL"
    conn.close()


def rows(database_url: str) -> list[str]:
    with psycopg2.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT key FROM idempotency_keys WHERE scope = 'devstack-test' ORDER BY key")
        keys = [key for (key,) in cursor.fetchall()]
    conn.close()
    return keys
