"""The load suite's stack and its judge: nginx → gunicorn (production config), an RQ
worker and the scheduler, on a database of its own; locust drives it in phases, and each
phase's answers come back per endpoint (p50/p95/p99) and sorted by failure kind.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from backend.app import create_app, sqlalchemy_url
from backend.auth.models import User
from backend.auth.passwords import hash_password
from backend.auth.sessions import start_session
from backend.config import load_config
from tests.e2e.processes import ROOT, Server, start_gunicorn, start_nginx
from tests.load.cpu import CpuSampler, cpu_shares
from tests.waiting import wait_for

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
PASSWORD = "load-suite correct horse"


@dataclass(frozen=True)
class Endpoint:
    """One endpoint's figures over a phase (milliseconds)."""

    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float


@dataclass
class PhaseResult:
    """What one phase measured: per endpoint, and the failures by kind."""

    name: str
    seconds: float
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)  # cores used on average, per group of processes

    @property
    def requests(self) -> int:
        return sum(e.requests for e in self.endpoints.values())


def fresh_database(services: Any, redis_url: str) -> str:
    """A new database with every migration applied; returns its URL."""
    from flask_migrate import upgrade

    from backend.extensions import db

    url = services.create_database()
    app = create_app({"ENV": "test", "DATABASE_URL": url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING",
                      "SECRET_KEY": "migrations-only-secret-key-0123456789"})
    with app.app_context():
        upgrade(directory="migrations")
        db.engine.dispose()
    return url


class LoadStack:
    """The real processes under load; a context manager that stops all it started."""

    def __init__(self, env: dict[str, str], run_dir: Path, *, web_workers: int | None = None) -> None:
        self.env, self.run_dir, self.web_workers = env, run_dir, web_workers
        self.engine = sa.create_engine(sqlalchemy_url(env["DATABASE_URL"]), pool_size=2)
        self.background: list[subprocess.Popen] = []
        self.gunicorn: Server | None = None
        self.nginx: Server | None = None

    def __enter__(self) -> LoadStack:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.gunicorn = start_gunicorn("wsgi:app", self.run_dir, env=self.env, workers=self.web_workers)
            self.nginx = start_nginx(self.run_dir, upstream_port=self.gunicorn.port)
            for role in ("worker", "scheduler"):
                self.background.append(self._start(role))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_: object) -> None:
        for process in self.background:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        for server in (self.nginx, self.gunicorn):
            if server is not None:
                server.stop()
        self.engine.dispose()

    def _start(self, role: str) -> subprocess.Popen:
        module = {"worker": "jobs.worker", "scheduler": "jobs.scheduler"}[role]
        log = (self.run_dir / f"{role}.log").open("wb")
        process = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env={**os.environ, **self.env},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return process

    def cpu_sampler(self) -> CpuSampler:
        """Groups the machine's processes: this stack's by role, then databases, then the harness."""
        assert self.gunicorn is not None and self.nginx is not None
        return CpuSampler({"gunicorn": [self.gunicorn.process.pid], "nginx": [self.nginx.process.pid],
                           "rq worker": [self.background[0].pid], "scheduler": [self.background[1].pid]},
                          harness=os.getpid())

    @property
    def url(self) -> str:
        assert self.nginx is not None
        return f"http://127.0.0.1:{self.nginx.port}"

    def seed_accounts(self, count: int, *, tag: str, role: str = "user") -> list[str]:
        """``count`` verified, active accounts sharing PASSWORD (one hash, written in SQL)."""
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO users (id, email, password_hash, email_verified_at, role, status) "
                "SELECT gen_random_uuid(), :tag || '-' || i || '@load.example.test', :hash, now(), :role, 'active' "
                "FROM generate_series(1, :n) i"), {"tag": tag, "hash": hash_password(PASSWORD), "role": role,
                                                   "n": count})
        return [f"{tag}-{i}@load.example.test" for i in range(1, count + 1)]

    def seed_devices(self, count: int, *, tag: str) -> None:
        """``count`` users with one push-enabled device each, a campaign's audience."""
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO users (id, email, email_verified_at) "
                "SELECT gen_random_uuid(), :tag || '-' || i || '@audience.example.test', now() "
                "FROM generate_series(1, :n) i"), {"tag": tag, "n": count})
            conn.execute(sa.text(
                "INSERT INTO devices (id, user_id, installation_id, token, platform, time_zone, locale) "
                "SELECT gen_random_uuid(), u.id, 'inst-' || u.id, 'tok-' || u.id, 'android', 'UTC', 'en' "
                "FROM users u WHERE u.email LIKE :pattern"), {"pattern": f"{tag}-%@audience.example.test"})

    def signed_in(self, emails: list[str]) -> list[dict[str, str]]:
        """A fresh session for each account, opened the way sign-in opens one, without the hash.

        Phones start a phase already signed in, so only the login storm pays for Argon2id.
        """
        app = create_app(load_config(environ=self.env))
        with app.app_context():
            from backend.extensions import db

            users = db.session.scalars(sa.select(User).where(User.email.in_(emails))).all()
            sessions = [{"email": u.email, **start_session(user=u, device_name="load phone", platform="android",
                                                           ip="127.0.0.1", user_agent="locust")} for u in users]
            db.session.remove()
            db.engine.dispose()
        return sessions

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def run(self, name: str, *, seconds: int, users: dict[str, int], accounts: list[str],
            spawn_rate: float = 20.0) -> PhaseResult:
        """One headless locust phase of ``seconds`` with ``users`` per class; its figures.

        Phones and refresh racers get fresh sessions of the first accounts; login stormers
        sign in with the others.
        """
        prefix = self.run_dir / name
        signed = sum(users.get(cls, 0) for cls in ("Phone", "RefreshStorm", "Uploader"))
        accounts_file, sessions_file = self.run_dir / f"{name}-accounts.txt", self.run_dir / f"{name}-sessions.jsonl"
        accounts_file.write_text("\n".join(accounts[signed:] or accounts))
        sessions_file.write_text("\n".join(json.dumps(s) for s in self.signed_in(accounts[:signed])))
        env = {**os.environ, "LOAD_ACCOUNTS": str(accounts_file), "LOAD_SESSIONS": str(sessions_file),
               "LOAD_PASSWORD": PASSWORD,
               **{f"LOAD_{cls.upper()}": str(n) for cls, n in users.items()}}
        command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
                   "--users", str(sum(users.values())), "--spawn-rate", str(spawn_rate),
                   "--run-time", f"{seconds}s", "--stop-timeout", "10", "--host", self.url,
                   "--csv", str(prefix), "--exit-code-on-error", "0", "--loglevel", "WARNING", *users]
        sampler = self.cpu_sampler()
        with (self.run_dir / f"{name}-locust.log").open("wb") as log:
            before, started = sampler.snapshot(), time.monotonic()
            result = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    timeout=seconds + 120)
            after, took = sampler.snapshot(), time.monotonic() - started
        if result.returncode != 0:
            raise RuntimeError(f"locust failed ({result.returncode}); see {self.run_dir / f'{name}-locust.log'}")
        phase = _read_phase(name, seconds, prefix)
        phase.cpu = cpu_shares(before, after, took)
        return phase

    def wait_for_campaign(self, campaign_id: str, *, timeout: float) -> None:
        """Until the campaign's every ledger row has left pending/sending."""
        wait_for(lambda: self.scalar("SELECT status FROM campaigns WHERE id = :c", c=campaign_id) == "completed",
                 timeout=timeout, every=0.5, what=f"campaign {campaign_id} to complete")


def _read_phase(name: str, seconds: int, prefix: Path) -> PhaseResult:
    phase = PhaseResult(name, seconds)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                continue
            phase.endpoints[row["Name"]] = Endpoint(
                requests=int(row["Request Count"]), failures=int(row["Failure Count"]),
                rps=float(row["Requests/s"]), p50=float(row["50%"]), p95=float(row["95%"]), p99=float(row["99%"]))
    with open(f"{prefix}_failures.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            error = row["Error"]
            kind = next((k for k in ("5xx", "false logout") if k in error), "unexpected")
            if "429" in error:  # kept with the limit that answered: "429 hashing_busy"
                kind = error[error.index("429"):].split("'")[0].strip()
            phase.errors[kind] += int(row["Occurrences"])
    return phase
