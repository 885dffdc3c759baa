"""What a gunicorn server's workers did during a run: connections each held, CPU spent, recycling.

Read from /proc (Linux), so the figures come from outside the app, under the production
config: the master's children, the established TCP connections each owns on the listen
port, and each worker's user+system CPU time.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def worker_pids(master_pid: int) -> list[int]:
    """The master's child processes (its workers), sorted."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    try:
        return sorted(int(pid) for pid in children.read_text().split())
    except OSError:
        return []


def _established_inodes(port: int) -> set[str]:
    """Socket inodes of established TCP connections whose local port is ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # 01: ESTABLISHED
                inodes.add(fields[9])
    return inodes


def connections_by_worker(port: int, pids: list[int]) -> list[int]:
    """How many of the port's established connections each worker holds right now."""
    wanted = _established_inodes(port)
    counts = []
    for pid in pids:
        held = 0
        try:
            for fd in os.scandir(f"/proc/{pid}/fd"):
                target = os.readlink(fd.path)
                if target.startswith("socket:[") and target[8:-1] in wanted:
                    held += 1
        except OSError:
            pass
        counts.append(held)
    return counts


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / _TICKS


@dataclass
class WorkerReport:
    """One run seen from the workers: connection spread mid-run, CPU per request, recycled workers."""

    spread: list[int]
    cpu_s: float
    recycled: int

    def cpu_us_per_request(self, requests: int) -> float:
        return self.cpu_s / max(1, requests) * 1e6

    def text(self, requests: int) -> str:
        spread = "/".join(str(n) for n in sorted(self.spread, reverse=True))
        return f"connections per worker {spread}; {self.cpu_us_per_request(requests):.0f} µs CPU/request; " \
               f"{self.recycled} worker(s) recycled"


class WorkerWatch:
    """Watch a gunicorn master's workers over one run (sample the spread half-way through)."""

    def __init__(self, master_pid: int, port: int, seconds: float):
        self.master_pid, self.port, self.seconds = master_pid, port, seconds
        self.before = worker_pids(master_pid)
        self.cpu_before = cpu_seconds(self.before)
        self.spread: list[int] = []
        self._timer = threading.Timer(seconds / 2, self._sample)

    def _sample(self) -> None:
        self.spread = connections_by_worker(self.port, worker_pids(self.master_pid))

    def __enter__(self) -> WorkerWatch:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.join()
        self.report = WorkerReport(spread=self.spread, cpu_s=cpu_seconds(self.before) - self.cpu_before,
                                   recycled=len(set(self.before) - set(worker_pids(self.master_pid))))
