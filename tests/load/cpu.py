"""Where the CPU went during a load phase: core-seconds per group of processes.

Taken from /proc through psutil at the phase's start and end: each process's own CPU
plus that of its children it has reaped (RQ's work-horses, forked per job, end within
the phase). Processes of the stack are grouped by the process they descend from;
PostgreSQL, Redis and nginx by name; the rest of the machine (other users of the two
cores) is ``other``: the machine's total less every group.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import psutil


def _own_cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass
class CpuSnapshot:
    machine: float
    per_process: dict[tuple[int, float], tuple[str, float]]  # (pid, create time) -> (group, seconds)


class CpuSampler:
    """Groups every process on the machine; ``roots`` maps a group name to pids it descends from.

    ``harness`` is the process driving the load: its own CPU and its reaped children's
    (each phase's locust), after every other group has had its pick.
    """

    def __init__(self, roots: dict[str, list[int]], *, harness: int) -> None:
        self.roots, self.harness = roots, harness

    def _group(self, process: psutil.Process) -> str:
        try:
            lineage = [process.pid, *(p.pid for p in process.parents())]
            name = process.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return "other"
        for group, pids in self.roots.items():
            if any(pid in lineage for pid in pids):
                return group
        for group in ("postgres", "redis", "nginx"):
            if name.startswith(group):
                return group
        return "harness (locust)" if self.harness in lineage else "other"

    def snapshot(self) -> CpuSnapshot:
        per_process = {}
        for process in psutil.process_iter():
            try:
                key = (process.pid, process.create_time())
                per_process[key] = (self._group(process), _own_cpu(process))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        total = psutil.cpu_times()
        busy = total.user + total.nice + total.system + total.irq + total.softirq + getattr(total, "steal", 0.0)
        return CpuSnapshot(busy, per_process)


def cpu_shares(before: CpuSnapshot, after: CpuSnapshot, seconds: float) -> dict[str, float]:
    """Cores used on average over the phase, per group, and ``idle`` (of all cores)."""
    used: Counter[str] = Counter()
    for key, (group, spent) in after.per_process.items():
        used[group] += spent - before.per_process.get(key, (group, 0.0))[1]
    machine = after.machine - before.machine
    named = sum(v for g, v in used.items() if g != "other")
    shares = {group: max(0.0, spent) / seconds for group, spent in used.items() if group != "other"}
    shares["other"] = max(0.0, machine - named) / seconds
    shares["idle"] = max(0.0, psutil.cpu_count() - machine / seconds)
    return shares
