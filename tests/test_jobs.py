"""Jobs leave after commit, never on rollback, run in a real worker with the app."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from datetime import timedelta

from rq.registry import FinishedJobRegistry
from sqlalchemy import func, select

from backend.common.db import utcnow
from backend.common.jobs import enqueue_after_commit, get_queue
from backend.common.models import IdempotencyKey
from backend.extensions import db
from jobs import scheduler


def _old_key(name: str) -> IdempotencyKey:
    return IdempotencyKey(scope="test", key=name, request_hash="0" * 64,
                          created_at=utcnow() - timedelta(days=2))


def test_job_is_enqueued_only_after_commit(app, db_session):
    with app.test_request_context():
        enqueue_after_commit(db.session, "jobs.maintenance.purge_idempotency_keys", queue="periodic")
        assert get_queue("periodic").count == 0
        db.session.commit()
        assert get_queue("periodic").count == 1
        job = get_queue("periodic").jobs[0]
        assert job.func_name == "jobs.maintenance.purge_idempotency_keys"


def test_rolled_back_work_enqueues_nothing(app, db_session):
    with app.test_request_context():
        enqueue_after_commit(db.session, "jobs.maintenance.purge_idempotency_keys", queue="periodic")
        db.session.rollback()
        db.session.commit()
        assert get_queue("periodic").count == 0


def test_jobs_use_the_json_serializer(app, db_session, redis_conn):
    with app.test_request_context():
        enqueue_after_commit(db.session, "jobs.maintenance.purge_idempotency_keys", queue="default",
                             job_id="json-check", note="plain values only")
        db.session.commit()
    raw = zlib.decompress(redis_conn.hget("rq:job:json-check", "data"))
    func, _instance, args, kwargs = json.loads(raw)  # JSON, not a pickle
    assert func == "jobs.maintenance.purge_idempotency_keys"
    assert kwargs == {"note": "plain values only"}


def test_in_process_worker_runs_job_inside_the_test_transaction(app, db_session, run_jobs):
    with app.app_context():
        db.session.add(_old_key("stale"))
        enqueue_after_commit(db.session, "jobs.maintenance.purge_idempotency_keys", queue="periodic")
        db.session.commit()
    run_jobs(("periodic",))
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_real_worker_process_runs_a_committed_job_against_postgres(committed_app):
    app = committed_app
    with app.app_context():
        db.session.add_all([_old_key("a"), _old_key("b")])
        enqueue_after_commit(db.session, "jobs.maintenance.purge_idempotency_keys",
                             queue="periodic", job_id="purge-now")
        db.session.commit()
    env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": app.config["REDIS_URL"],
           "ENV": "test", "LOG_JSON": "false"}
    result = subprocess.run([sys.executable, "-m", "jobs.worker", "periodic", "--burst"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
        finished = FinishedJobRegistry(queue=get_queue("periodic"))
        assert "purge-now" in finished.get_job_ids()
        assert finished.get_queue().fetch_job("purge-now").return_value() == 2


def test_scheduler_enqueues_each_periodic_slot_once(app, redis_conn):
    with app.app_context():
        first = scheduler.enqueue_due(app)
        second = scheduler.enqueue_due(app)  # same slot: a second scheduler would do this
        assert first and second == []
        assert get_queue("periodic").count == len(first)
