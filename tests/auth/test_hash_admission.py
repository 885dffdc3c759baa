"""Password hashing admission: a bounded number of hashes per process, a bounded queue, then 429.

A full server answers sign-ins with 429 ``hashing_busy`` and Retry-After (never a 5xx),
spends none of the account's attempts on them, lets a bounded number wait for a slot,
and hashes on threads of a lower CPU priority than the request threads.
"""
from __future__ import annotations

import os
import runpy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask

from backend.auth import hash_admission
from backend.config import SETTINGS
from tests.auth.conftest import PASSWORD
from tests.waiting import wait_for


@pytest.fixture
def small_admission(committed_app: Flask, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setitem(committed_app.config, "PASSWORD_HASH_SLOTS", 1)
    monkeypatch.setitem(committed_app.config, "PASSWORD_HASH_QUEUE", 0)
    monkeypatch.setitem(committed_app.config, "PASSWORD_HASH_WAIT_MS", 1500)
    return committed_app


@contextmanager
def every_slot_taken(app: Flask) -> Iterator[None]:
    """Another request holds this process's only hashing slot until the block ends."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with app.app_context(), hash_admission.slot():
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30), "the holder never got the slot"
        yield
    finally:
        release.set()
        holder.join(30)


def _login(client, email: str):
    return client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})


def test_sign_in_while_every_hashing_slot_is_taken_gets_429_with_retry_after_and_spends_no_attempt(
        small_admission, make_user, monkeypatch):
    app = small_admission
    monkeypatch.setitem(app.config, "AUTH_LOGIN_LIMIT_PER_ACCOUNT", 2)
    with app.app_context():
        email = make_user().email
    client = app.test_client()
    with every_slot_taken(app):
        answers = [_login(client, email) for _ in range(3)]  # more than the account's attempts
    for answer in answers:
        assert answer.status_code == 429
        assert answer.get_json()["error"]["code"] == "hashing_busy"
        assert answer.headers["Retry-After"] == "2"  # 1.5 s of waiting, rounded up
    signed_in = _login(client, email)
    assert signed_in.status_code == 200, signed_in.get_json()
    assert signed_in.get_json()["access_token"]


def test_a_bounded_number_of_sign_ins_wait_for_a_slot_and_then_succeed(small_admission, make_user, monkeypatch):
    app = small_admission
    monkeypatch.setitem(app.config, "PASSWORD_HASH_QUEUE", 1)
    monkeypatch.setitem(app.config, "PASSWORD_HASH_WAIT_MS", 60_000)
    with app.app_context():
        email, other = make_user().email, make_user().email
        admission = hash_admission.current()
    waited: list[int] = []
    with every_slot_taken(app):
        queued = threading.Thread(target=lambda: waited.append(_login(app.test_client(), email).status_code))
        queued.start()
        wait_for(lambda: admission.waiting == 1, timeout=30, what="the sign-in to queue for a slot")
        beyond = _login(app.test_client(), other)  # the queue is full: answered at once
        assert beyond.status_code == 429 and beyond.get_json()["error"]["code"] == "hashing_busy"
    queued.join(60)
    assert waited == [200]
    assert admission.waiting == 0


def test_with_the_default_bounds_every_thread_of_a_worker_may_wait_for_the_slot(committed_app, make_user,
                                                                               monkeypatch):
    """Keep-alive connections stay on the worker that accepted them: B2's four clients landed
    on one worker, whose third waiting sign-in got 429 at once while the other workers idled
    (154 of 400 sign-ins refused). With the defaults, each of a worker's threads may wait."""
    defaults = {s.name: int(s.default) for s in SETTINGS if s.name.startswith("PASSWORD_HASH_")}
    threads = runpy.run_path(str(Path(__file__).parents[2] / "deploy" / "gunicorn.conf.py"))["threads"]
    app = committed_app
    for name in ("PASSWORD_HASH_SLOTS", "PASSWORD_HASH_QUEUE"):
        monkeypatch.setitem(app.config, name, defaults[name])
    monkeypatch.setitem(app.config, "PASSWORD_HASH_WAIT_MS", 60_000)
    waiters = threads - defaults["PASSWORD_HASH_SLOTS"]  # the other threads of the worker
    with app.app_context():
        emails = [make_user().email for _ in range(waiters)]
        admission = hash_admission.current()
    answers: list[int] = []
    with every_slot_taken(app):
        callers = [threading.Thread(target=lambda e=e: answers.append(_login(app.test_client(), e).status_code))
                   for e in emails]
        for caller in callers:
            caller.start()
        wait_for(lambda: admission.waiting == waiters or len(answers) > 0, timeout=30,
                 what=f"{waiters} sign-ins to wait for the slot")
    for caller in callers:
        caller.join(60)
    assert answers == [200] * waiters


def test_registration_hashes_are_admitted_too(small_admission):
    client = small_admission.test_client()
    with every_slot_taken(small_admission):
        answer = client.post("/v1/auth/register", json={"email": "busy@example.test",
                                                        "password": "a long enough passphrase 7"})
    assert answer.status_code == 429 and answer.get_json()["error"]["code"] == "hashing_busy"


def test_hashes_run_on_threads_of_lower_cpu_priority_than_the_request(small_admission):
    def my_niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = my_niceness()
    with small_admission.app_context():
        hashing = hash_admission.run(my_niceness)
    assert hashing == min(19, before + small_admission.config["PASSWORD_HASH_NICE"])
    assert my_niceness() == before  # the request's own thread is untouched


def test_outside_an_app_hashing_runs_directly():
    assert hash_admission.current() is None
    assert hash_admission.run(threading.get_native_id) == threading.get_native_id()
