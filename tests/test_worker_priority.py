"""WORKER_NICE: a worker and the jobs it forks yield the CPU to web processes on the same machine."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_PROBE = """
import os, sys
from jobs.worker import lower_priority
lowered = lower_priority(int(sys.argv[1]))
child = os.fork()
if child == 0:  # a job's work-horse is forked like this
    print("job", os.nice(0), flush=True)
    os._exit(0)
os.waitpid(child, 0)
# Empty when the session is in the root group (no setsid since boot, or a cpu cgroup): no autogroup to show.
shown = open("/proc/self/autogroup").read().split() if os.path.exists("/proc/self/autogroup") else []
group = shown[-1] if shown else "none"
print("worker", lowered, os.nice(0), "group", group, flush=True)
"""


def _probe(nice: int, *, own_session: bool) -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", _PROBE, str(nice)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False, start_new_session=own_session)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    return {line.split()[0]: line.split()[1:] for line in out.splitlines()}


def test_a_worker_leading_its_session_lowers_itself_its_jobs_and_its_scheduling_group():
    base = os.nice(0)
    lines = _probe(7, own_session=True)
    expected = str(min(19, base + 7))
    assert lines["worker"][:2] == [expected, expected]
    assert lines["job"] == [expected]
    if lines["worker"][3] != "none":  # the kernel has autogroups: the worker's own is lowered too
        assert lines["worker"][3] == expected
    assert os.nice(0) == base  # the caller is untouched


def test_a_worker_in_someone_elses_session_leaves_the_sessions_group_alone():
    group_before = Path("/proc/self/autogroup").read_text() if Path("/proc/self/autogroup").exists() else None
    lines = _probe(5, own_session=False)
    assert lines["worker"][1] == str(min(19, os.nice(0) + 5))
    if group_before is not None:
        assert Path("/proc/self/autogroup").read_text() == group_before


def test_worker_nice_zero_leaves_the_priority_alone():
    lines = _probe(0, own_session=True)
    assert lines["worker"][:2] == [str(os.nice(0))] * 2
