"""Production gunicorn settings for Groundwork, read from the environment.

Used by the container's `web` role, the end-to-end nginx test and the benchmarks:
`gunicorn --config deploy/gunicorn.conf.py wsgi:app`.

variable                   default              meaning
GUNICORN_BIND              $HOST:$PORT          listen address(es), comma separated
HOST / PORT                127.0.0.1 / 8000     used when GUNICORN_BIND is unset
WEB_CONCURRENCY            2 x cores + 1        worker processes
GUNICORN_MAX_WORKERS       12                   cap on the computed default
GUNICORN_THREADS           4                    threads per worker (gthread)
GUNICORN_TIMEOUT           30                   seconds before a silent worker is killed
GUNICORN_GRACEFUL_TIMEOUT  25                   SIGTERM: time to finish in-flight requests
GUNICORN_KEEPALIVE         75                   idle keep-alive seconds (> nginx's 60)
GUNICORN_MAX_REQUESTS      1000000 (jitter 10%) recycle a worker after this many requests (0: never)
GUNICORN_ACCESS_LOG        unset (off)          `-` for stdout; the app logs requests
GUNICORN_LOG_LEVEL         info                 gunicorn's own log level
FORWARDED_ALLOW_IPS        127.0.0.1,::1        proxies trusted for X-Forwarded-Proto
GUNICORN_CONTROL_SOCKET    unset (disabled)     socket for `gunicornc` (see below)

Client addresses (X-Forwarded-For) are resolved by the app's ProxyFix, not by gunicorn;
`forwarded_allow_ips` only governs the scheme headers below.
"""

import gc
import math
import os

from gunicorn.workers.gthread import ThreadWorker


def _int_env(name: str, default: int) -> int:
    """An integer setting from the environment, failing loudly on garbage."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"gunicorn.conf.py: {name}={raw!r} is not an integer") from None


def usable_cores() -> int:
    """Cores this process may use: CPU affinity, then a cgroup v2 quota if one is set."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as handle:
            quota, period = handle.read().split()
        if quota != "max":
            # A container limited to 1.5 CPUs should not start 2*N+1 workers for the host's N.
            cores = max(1, min(cores, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


_port = _int_env("PORT", 8000)
bind = [
    part.strip()
    for part in os.environ.get("GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{_port}").split(",")
    if part.strip()
]



class BalancedThreadWorker(ThreadWorker):
    """gthread that takes no new connection while every one of its threads is busy.

    Plain gthread accepts whenever its loop wakes, so whichever worker wakes first takes
    a burst of new keep-alive connections: 16 connections landed 7/5/3/1/0 on five
    workers, and the worker with 7 queued requests behind its 4 threads set the p99 (160
    ms at a 19 ms p50). Here a worker whose threads are all busy leaves new connections
    in the listen queue for a worker with a free thread. Unlike a low
    ``worker_connections``, nothing is capped: a busy worker takes connections again as
    soon as a thread frees, so nginx's pooled connections never wait for a slot.
    """

    def init_process(self) -> None:
        self.in_flight = 0  # requests handed to the thread pool and not finished (main thread only)
        super().init_process()

    def enqueue_req(self, conn) -> None:  # noqa: ANN001 - gunicorn's signature
        self.in_flight += 1
        super().enqueue_req(conn)

    def finish_request(self, conn, fs) -> None:  # noqa: ANN001 - gunicorn's signature
        self.in_flight -= 1
        super().finish_request(conn, fs)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if self.alive:
            self.set_accept_enabled(self.nr_conns < self.worker_connections and self.in_flight < self.cfg.threads)
        super().wait_for_and_dispatch_events(timeout)


# gthread: each worker serves several requests at once (I/O-bound: PostgreSQL, Redis)
# and parks idle keep-alive connections from nginx without holding a thread; the
# balanced variant spreads new connections over the workers with a free thread.
worker_class = BalancedThreadWorker
workers = _int_env("WEB_CONCURRENCY", min(2 * usable_cores() + 1, _int_env("GUNICORN_MAX_WORKERS", 12)))
threads = _int_env("GUNICORN_THREADS", 4)

# The database statement timeout is lower than this, so a slow query fails cleanly
# with a 503 from the app before gunicorn would kill the worker.
timeout = _int_env("GUNICORN_TIMEOUT", 30)
# SIGTERM: stop accepting, finish in-flight requests for up to this long, then exit.
# Kubernetes' terminationGracePeriodSeconds must exceed preStop sleep + this.
graceful_timeout = _int_env("GUNICORN_GRACEFUL_TIMEOUT", 25)
# Must outlast nginx's upstream `keepalive_timeout` (60s): if gunicorn closed an idle
# connection first, nginx could send a request into the closing socket and answer 502.
keepalive = _int_env("GUNICORN_KEEPALIVE", 75)

# Recycling bounds slow leaks; the jitter keeps all workers from restarting together.
# Each recycle rebuilds the app (about 0.7 s of CPU here) and drops its keep-alive
# connections onto the other workers, so the bound is high: at 2000 a busy worker
# restarted every few seconds and B1's p99 went past a second, and at 10000 recycling
# still landed inside a one-minute run. At a million, a worker serving 2000 requests a
# second recycles about every eight minutes; memory growth is watched by the pod's limit.
max_requests = _int_env("GUNICORN_MAX_REQUESTS", 1_000_000)
max_requests_jitter = _int_env("GUNICORN_MAX_REQUESTS_JITTER", max_requests // 10)

# Each worker builds its own app after the fork, so no connection pool is shared
# across processes.
preload_app = False


def post_worker_init(worker) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """Freeze the app's import-time objects out of the cyclic garbage collector.

    Building the app leaves about 200,000 tracked objects (SQLAlchemy, marshmallow, the
    OpenAPI spec, Flask-Admin) that live as long as the worker. A full (generation 2)
    collection walks them all while holding the GIL: measured in a worker under load,
    112-245 ms during which every thread of that worker stood still (B1's p99 outliers);
    with them frozen the same collections took 0.03-2.2 ms. No collection first: one found
    20 unreachable objects after the app was built and cost 0.1-1 s of a booting worker
    (five booting at once at load 10+), so the few bytes of start-up garbage stay frozen.
    """
    gc.freeze()


# Heartbeat files on tmpfs: a disk-backed /tmp can stall workers (gunicorn's FAQ).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The app's JSON log line carries the request ID; keep gunicorn's format for the
# optional access log close to it.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}i)s ua="%(a)s"'

forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Only nginx's own header is honoured; it overwrites whatever the client sent.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# gunicorn >= 25 opens a control socket at one fixed per-user path by default; several
# instances on one host (tests, benchmarks, sidecars) would collide, so it is opt-in.
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip()
if _control_socket:
    control_socket = _control_socket
else:
    control_socket_disable = True

proc_name = "groundwork-web"
