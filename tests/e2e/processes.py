"""Real gunicorn and nginx processes on loopback, for end-to-end tests and benchmarks.

gunicorn always runs with the production config (``deploy/gunicorn.conf.py``) and nginx
with ``nginx/test.conf.template``, which includes the same shared files production does.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from backend.config import SETTINGS
from tests.waiting import wait_for

if TYPE_CHECKING:
    from flask import Flask

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
NGINX_DIR = ROOT / "nginx"
NGINX_TEMPLATE = NGINX_DIR / "test.conf.template"
INSTALL_HINT = "run `deploy/install-system-deps.sh` (as root; `make test` does it)"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A started server process: where it listens and where it logs."""

    name: str
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the process's log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (graceful for gunicorn and nginx), then SIGKILL of its group if stuck."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        return self.process.returncode


def wait_until_serving(server: Server, path: str = "/healthz", timeout: float = 30.0) -> None:
    """Poll ``path`` until it answers 200; fail with the process log if it dies or stalls."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + path, timeout=2) as response:
                if response.status == 200:
                    return
                last_error = f"status {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.name} not serving {path} after {timeout}s ({last_error}):\n{server.log_tail()}")


def listening_socket(port: int = 0) -> socket.socket:
    """A socket already listening on 127.0.0.1 (``port`` 0: any free one), for a child to inherit.

    Handing the bound socket to the child leaves no moment in which another process (a
    parallel test worker, another session) can take the port between choosing and binding.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def start_gunicorn(
    app_spec: str,
    run_dir: Path,
    *,
    env: dict[str, str] | None = None,
    port: int | None = None,
    workers: int | None = None,
    ready_path: str = "/healthz",
) -> Server:
    """gunicorn serving ``app_spec`` (e.g. ``wsgi:app``) with the production config.

    gunicorn inherits its listening socket (``fd://``), so the port is ours from the start.
    """
    listener = listening_socket(port or 0)
    port = listener.getsockname()[1]
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / f"gunicorn-{port}.log"
    child_env = {**os.environ, **(env or {}), "GUNICORN_BIND": f"fd://{listener.fileno()}"}
    if workers is not None:
        child_env["WEB_CONCURRENCY"] = str(workers)
    try:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), app_spec],
                cwd=ROOT,
                env=child_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(listener.fileno(),),
                start_new_session=True,  # its own group: a stuck stop kills only what we started
            )
    finally:
        listener.close()  # gunicorn holds its copy; ours would keep accepting after it stops
    server = Server("gunicorn", process, port, log_path)
    wait_until_serving(server, ready_path)
    return server


def nginx_binary() -> str | None:
    """Path of the nginx executable, also where /usr/sbin is not on PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def render_nginx_config(run_dir: Path, *, listen_port: int, upstream_port: int, stream_port: int | None = None
                        ) -> Path:
    """Write ``run_dir/nginx.conf`` from the test template, with the shared files linked.

    Without ``stream_port`` the stream path points at a port nothing listens on (503 there).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    link = run_dir / "groundwork"
    if not link.exists():
        link.symlink_to(NGINX_DIR, target_is_directory=True)
    values = {
        "@USER_LINE@": "user root;" if os.geteuid() == 0 else "",
        "@RUN_DIR@": str(run_dir),
        "@LISTEN_PORT@": str(listen_port),
        "@UPSTREAM_PORT@": str(upstream_port),
        "@STREAM_PORT@": str(stream_port or free_port()),
    }
    text = NGINX_TEMPLATE.read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    directives = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    unfilled = re.findall(r"@[A-Z][A-Z_]*@", directives)
    if unfilled:
        raise ValueError(f"unfilled placeholders {unfilled} in {NGINX_TEMPLATE}")
    conf = run_dir / "nginx.conf"
    conf.write_text(text)
    return conf


def nginx_command(conf: Path, *extra: str) -> list[str]:
    """The nginx command line for a rendered config (prefix and error log in its dir)."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError(f"nginx is not installed: {INSTALL_HINT}")
    run_dir = conf.parent
    return [binary, "-p", str(run_dir), "-e", str(run_dir / "error.log"), "-c", str(conf), *extra]


def check_nginx_config(conf: Path) -> str:
    """``nginx -t`` on a rendered config; returns its output, raises when it fails."""
    result = subprocess.run(nginx_command(conf, "-t"), capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{result.stderr}")
    return result.stderr


class PortTaken(RuntimeError):
    """Another process bound the chosen port before the server did."""


def start_nginx(
    run_dir: Path, *, upstream_port: int, listen_port: int | None = None, ready_path: str | None = "/healthz",
    stream_port: int | None = None,
) -> Server:
    """nginx in the foreground with the loopback config in front of ``upstream_port`` (and the stream server).

    nginx binds its own port, so a port chosen free can be taken before it does (parallel
    test workers, other sessions): then it starts again on another one.
    """
    attempts = 1 if listen_port else 3
    for attempt in range(attempts):
        try:
            return _start_nginx_once(run_dir, upstream_port, listen_port or free_port(), ready_path, stream_port)
        except PortTaken:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _start_nginx_once(
    run_dir: Path, upstream_port: int, listen_port: int, ready_path: str | None, stream_port: int | None
) -> Server:
    conf = render_nginx_config(run_dir, listen_port=listen_port, upstream_port=upstream_port, stream_port=stream_port)
    check_nginx_config(conf)
    log_path = run_dir / "nginx-stderr.log"
    pid_file, error_log = run_dir / "nginx.pid", run_dir / "error.log"
    pid_file.unlink(missing_ok=True)
    logged_before = error_log.stat().st_size if error_log.exists() else 0
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            nginx_command(conf), cwd=run_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server("nginx", process, listen_port, error_log)
    # nginx writes its pid file only once its listening sockets are bound: until then an
    # answer on the port could come from whoever else holds it.
    wait_for(lambda: pid_file.exists() or process.poll() is not None, timeout=15, what="nginx to bind its port")
    if not pid_file.exists():
        process.wait(5)
        with error_log.open("rb") as handle:
            handle.seek(logged_before)
            errors = handle.read().decode(errors="replace")
        if "Address already in use" in errors:
            raise PortTaken(f"port {listen_port} was taken before nginx bound it")
        raise RuntimeError(f"nginx exited with {process.returncode}:\n{errors[-4000:]}")
    if ready_path is not None:
        wait_until_serving(server, ready_path)
    else:
        _wait_for_port(server)
    return server


def _wait_for_port(server: Server, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log_tail()}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{server.name} not listening on {server.port}:\n{server.log_tail()}")


def environment_of(app: Flask, **overrides: str) -> dict[str, str]:
    """The test app's settings as the environment variables a separate process reads."""
    env: dict[str, str] = {}
    for setting in SETTINGS:
        value = app.config.get(setting.name)
        if value is None:
            continue
        if isinstance(value, bool):
            env[setting.name] = "true" if value else "false"
        elif isinstance(value, dict):
            continue  # parsed structures (MEDIA_POLICIES): tests that change one pass its JSON as an override
        elif isinstance(value, list | tuple):
            env[setting.name] = ",".join(map(str, value))
        else:
            env[setting.name] = str(value)
    return {**env, **overrides}


def start_stream_server(run_dir: Path, *, env: dict[str, str], port: int | None = None) -> Server:
    """The stream server (``python -m backend.streams``) on loopback, ready once subscribed to Redis."""
    port = port or free_port()
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / f"streams-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.streams", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Server("stream server", process, port, log_path)
    wait_until_serving(server, "/readyz")
    return server
