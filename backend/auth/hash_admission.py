"""Admission control for password hashing: Argon2id gets spare CPU, never every core.

One Argon2id verification is about 20 ms of a core and 19 MiB. In a sign-in storm every
gunicorn thread was hashing at once, and the cheap endpoints beside them (``/v1/me``,
the inbox, device registration) waited for CPU: B12 measured their p99 at 130x idle.
So, in each web process:

- at most ``PASSWORD_HASH_SLOTS`` hashes run at once, each on a thread of its own at a
  lower CPU priority (``PASSWORD_HASH_NICE``): the kernel runs request threads first and
  gives hashing what is left;
- at most ``PASSWORD_HASH_QUEUE`` more wait for a slot, each for up to
  ``PASSWORD_HASH_WAIT_MS``; anything beyond is answered at once with 429 ``hashing_busy``
  and Retry-After. Not 503: the service is up, the client only has to try again shortly,
  and the bounded wait keeps a slow hash from holding threads for long.

The default queue is gunicorn's threads minus the slots (4 - 1): a keep-alive connection
stays on the worker that accepted it, so a few clients can all land on one worker while
the others idle; a smaller queue refused their sign-ins at once (B2: 154 of 400 answered
429 with queue 2, none with 3). A waiting sign-in holds its thread about one hash long.

A pod hashes at most WEB_CONCURRENCY x PASSWORD_HASH_SLOTS passwords at once. Outside a
request (CLI, seeding scripts) hashing runs directly, unmetered.

``slot()`` is re-entrant in a thread: sign-in takes the slot before its attempt limits
(lockout.guard) so a busy answer does not use up one of the account's attempts, and the
hash inside then runs in that same slot.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from flask import current_app, has_app_context

from backend.common.errors import TooManyRequests

T = TypeVar("T")


class HashingBusy(TooManyRequests):
    code = "hashing_busy"


def _lower_priority(nice: int) -> None:
    """In a new pool thread: add ``nice`` to this thread's own niceness (Linux nices threads one by one)."""
    if nice > 0 and hasattr(os, "setpriority"):
        me = threading.get_native_id()
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + nice))


class HashAdmission:
    """Slots, a bounded queue for them, and the low-priority threads the hashes run on."""

    def __init__(self, *, slots: int, queue: int, wait_s: float, nice: int) -> None:
        self.slots, self.queue, self.wait_s = max(1, slots), max(0, queue), max(0.0, wait_s)
        self._free = threading.Semaphore(self.slots)
        self._lock = threading.Lock()
        self._waiting = 0
        self._held = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="password-hash",
                                        initializer=_lower_priority, initargs=(nice,))

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one hashing slot (or the one this thread holds already); 429 when none comes."""
        if getattr(self._held, "depth", 0):
            self._held.depth += 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        if not self._free.acquire(blocking=False):
            with self._lock:
                if self._waiting >= self.queue:
                    raise self._busy()
                self._waiting += 1
            try:
                admitted = self._free.acquire(timeout=self.wait_s)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not admitted:
                raise self._busy()
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            self._free.release()

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot now."""
        return self._waiting

    def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on a low-priority hashing thread, inside a slot."""
        with self.slot():
            return self._pool.submit(fn, *args).result()

    def _busy(self) -> HashingBusy:
        return HashingBusy("Too many sign-ins at once on this server; try again in a moment.",
                           retry_after=max(1, math.ceil(self.wait_s)))


_admissions: dict[tuple, HashAdmission] = {}
_admissions_lock = threading.Lock()


def current() -> HashAdmission | None:
    """This process's admission for the current app's settings; None outside an app."""
    if not has_app_context():
        return None
    config = current_app.config
    key = (os.getpid(), config["PASSWORD_HASH_SLOTS"], config["PASSWORD_HASH_QUEUE"],
           config["PASSWORD_HASH_WAIT_MS"], config["PASSWORD_HASH_NICE"])
    with _admissions_lock:  # one per process (a fork gets its own threads) and per settings
        admission = _admissions.get(key)
        if admission is None:
            admission = _admissions[key] = HashAdmission(
                slots=key[1], queue=key[2], wait_s=key[3] / 1000, nice=key[4])
        return admission


def run(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` admitted (in an app), else directly."""
    admission = current()
    return fn(*args) if admission is None else admission.run(fn, *args)


@contextlib.contextmanager
def slot() -> Iterator[None]:
    """A hashing slot for what follows (in an app); nothing outside one."""
    admission = current()
    if admission is None:
        yield
    else:
        with admission.slot():
            yield
