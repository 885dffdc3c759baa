"""Chaos fixtures: the fake FCM server, an app pointed at it, and real worker processes."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from flask import Flask

from backend.app import create_app
from tests.conftest import fcm_app_settings
from tests.fakes.fcm_server import FakeFcmControl

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def app(database_url: str, services: Any, fake_fcm_server: FakeFcmControl) -> Flask:
    return create_app(fcm_app_settings(database_url, services.redis_url, fake_fcm_server))


class Workers:
    """Real ``python -m jobs.worker`` processes (forking, with RQ's scheduler), stopped at teardown."""

    def __init__(self, app: Flask, fake: FakeFcmControl, log_dir: Path) -> None:
        self.env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": app.config["REDIS_URL"],
                    "ENV": "test", "LOG_JSON": "false", "LOG_LEVEL": "INFO", "PUSH_BACKEND": "fcm",
                    "FCM_CREDENTIALS_FILE": fake.credentials_path, "FCM_ENDPOINT": fake.base_url,
                    "SECRET_KEY": "test-secret-key-that-is-long-enough-1234567890"}
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, *queues: str) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{len(self.procs)}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "jobs.worker", *(queues or ("push",))], cwd=ROOT,
                                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def horses(self, proc: subprocess.Popen) -> list[int]:
        """The worker's children: its work-horse (in its own process group) and nothing else we started."""
        try:
            return [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL the worker and its work-horse: a machine dying mid-batch."""
        horses = self.horses(proc)
        proc.send_signal(signal.SIGKILL)
        for pid in horses:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)

    def log(self, index: int) -> str:
        return (self.log_dir / f"worker-{index}.log").read_text()

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                for pid in self.horses(proc):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                proc.kill()
                proc.wait(10)


@pytest.fixture
def workers(committed_app: Flask, fake_fcm: FakeFcmControl, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(committed_app, fake_fcm, tmp_path)
    yield pool
    pool.stop_all()
