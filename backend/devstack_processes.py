"""The dev stack's child processes: gunicorn, the stream server, one RQ worker, the scheduler.

Each child gets its own session (process group), so a Ctrl-C in the terminal reaches only
the launcher, which then stops the children in order and gracefully. On Linux each child
also asks the kernel for SIGTERM should the launcher die without cleaning up.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STOP_TIMEOUT_S = 30.0  # above gunicorn's graceful timeout (25 s by default)


@dataclass
class Child:
    """One started child process and the name it is reported by."""

    name: str
    process: subprocess.Popen


def commands(root: Path) -> dict[str, list[str]]:
    """The command line of each child, run from the repository root."""
    python = sys.executable
    return {
        "gunicorn": [python, "-m", "gunicorn", "--config", str(root / "deploy" / "gunicorn.conf.py"), "wsgi:app"],
        "streams": [python, "-m", "backend.streams"],
        "worker": [python, "-m", "jobs.worker"],
        "scheduler": [python, "-m", "jobs.scheduler"],
    }


def _parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook that makes the kernel SIGTERM the child when the launcher dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # loaded before fork: the hook only calls it
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook


def start_children(env: dict[str, str], *, cwd: Path) -> list[Child]:
    """Start gunicorn, the stream server, the worker and the scheduler; their output goes to ours."""
    hook = _parent_death_signal()
    children: list[Child] = []
    try:
        for name, command in commands(cwd).items():
            process = subprocess.Popen(  # noqa: S603 - our interpreter and fixed arguments
                command, cwd=cwd, env=env, start_new_session=True, preexec_fn=hook  # noqa: PLW1509
            )
            children.append(Child(name, process))
    except BaseException:
        stop_children(children)
        raise
    return children


def stop_children(
    children: list[Child], *, timeout: float = STOP_TIMEOUT_S, report: Callable[[str], None] | None = None
) -> None:
    """SIGTERM each child (graceful in gunicorn, aiohttp, RQ and the scheduler), then SIGKILL stragglers."""
    running = [child for child in children if child.process.poll() is None]
    if running and report:
        report("stopping " + ", ".join(child.name for child in running))
    for child in running:
        _signal(child, signal.SIGTERM, group=False)  # the leader stops its own workers in order
    deadline = time.monotonic() + timeout
    for child in running:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            if report:
                report(f"{child.name} did not stop within {timeout:.0f}s; killing it")
    for child in children:
        # The whole group: gunicorn's workers or RQ's work-horse may outlive a killed leader.
        _signal(child, signal.SIGKILL, group=True)
        child.process.wait()


def _signal(child: Child, signum: int, *, group: bool) -> None:
    try:
        if group:
            os.killpg(child.process.pid, signum)
        else:
            child.process.send_signal(signum)
    except (ProcessLookupError, PermissionError):
        pass  # already gone
