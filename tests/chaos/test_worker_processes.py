"""A worker process killed outright leaves nothing running behind it."""
from __future__ import annotations

import psutil
import pytest

from tests.chaos.conftest import Workers
from tests.waiting import wait_for

pytestmark = pytest.mark.chaos


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigkilled_worker_leaves_no_orphan_scheduler(committed_app, fake_fcm, workers: Workers):
    proc = workers.start("push")
    # RQ forks its scheduler as a child of the worker once the worker holds the scheduler lock.
    children = wait_for(lambda: workers.horses(proc), timeout=30, what="the worker's scheduler child")
    proc.kill()  # SIGKILL the worker alone: nobody stops its children for it
    proc.wait(10)
    wait_for(lambda: not any(_alive(pid) for pid in children), timeout=15,
             what=f"the children {children} of the killed worker to end")
