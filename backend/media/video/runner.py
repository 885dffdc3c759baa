"""Run one ffmpeg process inside limits, and never leave it behind.

- It runs in its own process group (``setsid``), so killing the group kills it and
  anything it started; every way out of ``run_limited`` (success, error, a job timeout
  raised into this thread, KeyboardInterrupt) ends with the group killed and reaped.
- ``PR_SET_PDEATHSIG`` makes the kernel SIGKILL it when the process that started it
  dies, so a SIGKILLed worker cannot orphan it; a parent already gone by the time the
  child runs (the race the flag cannot see) makes the child exit at once.
- A watchdog thread enforces the wall-clock limit and the total bytes written under the
  output folder; ``RLIMIT_FSIZE`` caps each single file even between watchdog looks.
- It runs at a lower CPU priority so API processes on the same machine stay responsive.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from backend.media.video.errors import OutputTooLarge, TranscodeFailed, TranscodeTimedOut

PR_SET_PDEATHSIG = 1
WATCH_EVERY_S = 0.2
STDERR_KEEP = 4000


@dataclass(frozen=True)
class RunLimits:
    """Bounds of one ffmpeg run."""

    time_limit_s: float = 1800.0
    max_output_bytes: int = 8 * 1024**3
    nice: int = 10


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (files vanishing meanwhile are skipped)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


def _child_setup(parent_pid: int, limits: RunLimits) -> Callable[[], None]:
    """What runs in the child between fork and exec (async-signal-safe calls only)."""
    libc = ctypes.CDLL(None, use_errno=True)

    def setup() -> None:
        os.setsid()
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before the flag was set
            os._exit(1)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_output_bytes, limits.max_output_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXFSZ must not leave a core file behind
        if limits.nice:
            os.nice(limits.nice)

    return setup


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group and reap the child."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_limited(
    args: Sequence[str], *, output_dir: Path, limits: RunLimits, on_line: Callable[[str], None] | None = None,
) -> None:
    """Run ``args`` (an ffmpeg command writing ``-progress pipe:1``), feeding each stdout line to ``on_line``."""
    started = time.monotonic()
    stop = threading.Event()
    verdict: list[TranscodeFailed] = []
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own binary with arguments we build
            list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, close_fds=True,
            preexec_fn=_child_setup(os.getpid(), limits),
        )

        def watch() -> None:
            while not stop.wait(WATCH_EVERY_S):
                if time.monotonic() - started > limits.time_limit_s:
                    verdict.append(TranscodeTimedOut(f"ffmpeg ran longer than {limits.time_limit_s:g} s"))
                elif folder_bytes(output_dir) > limits.max_output_bytes:
                    verdict.append(OutputTooLarge(f"ffmpeg wrote more than {limits.max_output_bytes} bytes"))
                else:
                    continue
                if process.returncode is None:  # not reaped by the waiting thread: its group id is still ours
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                return

        watchdog = threading.Thread(target=watch, name="ffmpeg-watchdog", daemon=True)
        watchdog.start()
        try:
            assert process.stdout is not None
            for raw in process.stdout:
                if on_line is not None:
                    on_line(raw.decode("utf-8", "replace").rstrip("\n"))
            process.wait()
        finally:
            stop.set()
            if process.returncode is None:  # not reaped yet, so its group id cannot be reused
                _kill_group(process)
            if process.stdout is not None:
                process.stdout.close()
            watchdog.join()
        if verdict:
            raise verdict[0]
        if process.returncode == -signal.SIGXFSZ:
            raise OutputTooLarge(f"ffmpeg wrote a file larger than {limits.max_output_bytes} bytes")
        if process.returncode != 0:
            stderr.seek(0)
            tail = stderr.read()[-STDERR_KEEP:].decode("utf-8", "replace").strip()
            raise TranscodeFailed(f"ffmpeg exited with {process.returncode}: {tail}")
