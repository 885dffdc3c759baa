"""Expired sign-in secrets are purged by the periodic job; live ones stay."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from backend.auth.factors.models import EmailCode, MfaChallenge
from backend.auth.models import OneTimeToken
from backend.common.db import utcnow
from backend.common.jobs import enqueue_after_commit
from backend.extensions import db


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_purge_job_removes_secrets_expired_over_a_day_and_keeps_the_rest(app, db_session, make_user, run_jobs):
    user = make_user(email="keep@example.test")
    now = utcnow()
    with app.app_context():
        for age, tag in ((timedelta(days=2), "old"), (timedelta(hours=2), "recent"), (-timedelta(minutes=5), "live")):
            expires = now - age
            db.session.add(EmailCode(email=f"{tag}@example.test", code_hash=tag.ljust(64, "0"), expires_at=expires))
            db.session.add(MfaChallenge(user_id=user.id, token_hash=tag.ljust(64, "1"), expires_at=expires))
            db.session.add(OneTimeToken(user_id=user.id, purpose="verify_email", token_hash=tag.ljust(64, "2"),
                                        email="keep@example.test", expires_at=expires))
        enqueue_after_commit(db.session, "jobs.accounts.purge_expired_secrets", queue="periodic")
        db.session.commit()
    run_jobs(("periodic",))
    with app.app_context():
        assert (_count(EmailCode), _count(MfaChallenge), _count(OneTimeToken)) == (2, 2, 2)
        left = set(db.session.scalars(select(EmailCode.email)))
        assert left == {"recent@example.test", "live@example.test"}
