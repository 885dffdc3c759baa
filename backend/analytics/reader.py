"""Where analyst queries read: ANALYTICS_DATABASE_URL (a read replica) or the primary.

Only queries go to the replica; ingest always writes to the primary. The replica's
engine is created on first use (nothing at import) and kept on the app.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from backend.extensions import db


@contextmanager
def analytics_session() -> Iterator[Session]:
    """A session for analyst queries, on the replica when one is configured."""
    url = current_app.config["ANALYTICS_DATABASE_URL"]
    work_mem = text(f"SET LOCAL work_mem = '{int(current_app.config['ANALYTICS_WORK_MEM_MB'])}MB'")
    if not url:
        db.session.execute(work_mem)  # for this request's transaction only
        yield db.session
        return
    engine = current_app.extensions.get("groundwork.analytics_engine")
    if engine is None:
        from backend.app import sqlalchemy_url

        options = current_app.config["SQLALCHEMY_ENGINE_OPTIONS"]
        engine = create_engine(sqlalchemy_url(url), **options)
        current_app.extensions["groundwork.analytics_engine"] = engine
    with Session(engine) as session:
        session.execute(work_mem)
        yield session
