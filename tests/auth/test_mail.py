"""Mail through a real SMTP server (aiosmtpd): in-process jobs and a real worker process."""
from __future__ import annotations

import os
import re
import subprocess
import sys

from sqlalchemy import select

from backend.auth.models import User
from backend.extensions import db
from tests.auth.conftest import PASSWORD

LINK = re.compile(r"https?://\S+")


def _link(message) -> str:
    return LINK.search(message.get_payload(decode=True).decode()).group(0)


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_smtp_backend_delivers_verification_mail_whose_link_verifies(smtp_app, smtp_server, client, run_jobs):
    client.post("/v1/auth/register", json={"email": "smtp@example.test", "password": PASSWORD})
    assert smtp_server.messages == []  # nothing is sent inside the request
    run_jobs()
    [message] = smtp_server.wait_for(1)
    assert message["To"] == "smtp@example.test" and message["Subject"] == "Confirm your email address"
    assert message["From"] == smtp_app.config["MAIL_FROM"]
    assert client.get(_path(_link(message))).status_code == 200
    assert db.session.scalar(select(User.email_verified_at).where(User.email == "smtp@example.test")) is not None


def test_send_email_job_retried_or_duplicated_sends_once(smtp_app, smtp_server, redis_conn):
    from backend.common.jobs import PendingJob, send_now
    from jobs.worker import build_worker

    kwargs = {"to": "once@example.test", "subject": "Hi", "text": "Hello", "message_id": "<dup-1@groundwork>"}
    with smtp_app.app_context():
        send_now(PendingJob("jobs.mail.send_email", "default", kwargs))
        send_now(PendingJob("jobs.mail.send_email", "default", kwargs))
        build_worker(smtp_app, ["default"], in_process=True).work(burst=True, with_scheduler=False)
    assert len(smtp_server.wait_for(1)) == 1


def test_real_worker_process_sends_verification_after_http_registration(committed_app, smtp_server):
    client = committed_app.test_client()
    assert client.post("/v1/auth/register", json={"email": "worker@example.test",
                                                  "password": PASSWORD}).status_code == 202
    env = {**os.environ, "DATABASE_URL": committed_app.config["DATABASE_URL"],
           "REDIS_URL": committed_app.config["REDIS_URL"], "ENV": "test", "LOG_JSON": "false",
           "MAIL_BACKEND": "smtp", "SMTP_HOST": smtp_server.host, "SMTP_PORT": str(smtp_server.port),
           "SECRET_KEY": committed_app.config["SECRET_KEY"]}
    result = subprocess.run([sys.executable, "-m", "jobs.worker", "default", "--burst", "--no-scheduler"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    [message] = smtp_server.wait_for(1)
    assert message["To"] == "worker@example.test"
    assert client.get(_path(_link(message))).status_code == 200
    login = client.post("/v1/auth/login", json={"email": "worker@example.test", "password": PASSWORD})
    assert login.status_code == 200


def test_outbox_in_development_prints_each_mail_with_its_link_once(client, run_jobs, app, monkeypatch, caplog):
    import logging

    monkeypatch.setitem(app.config, "ENV", "development")
    client.post("/v1/auth/register", json={"email": "dev@example.test", "password": "correct horse battery staple"})
    with caplog.at_level(logging.INFO, logger="backend.common.mail"):
        run_jobs()
    [line] = [r.getMessage() for r in caplog.records if r.name == "backend.common.mail"]
    assert line.startswith("mail to dev@example.test: Confirm your email address")
    assert "/v1/auth/verify-email?token=" in line


def test_outbox_outside_development_prints_nothing(client, run_jobs, caplog):
    import logging

    client.post("/v1/auth/register", json={"email": "quiet@example.test", "password": "correct horse battery staple"})
    with caplog.at_level(logging.INFO, logger="backend.common.mail"):
        run_jobs()
    assert not [r for r in caplog.records if r.name == "backend.common.mail"]


def test_outbox_lists_newest_mails_per_recipient_and_the_cli_prints_them(client, run_jobs, app):
    from backend.common.mail import list_outbox
    from backend.extensions import db

    for email in ("one@example.test", "two@example.test"):
        client.post("/v1/auth/register", json={"email": email, "password": "correct horse battery staple"})
    run_jobs()
    page = list_outbox(db.session, recipient="TWO@example.test", limit=10)
    assert [m.recipient for m in page.items] == ["two@example.test"]
    assert len(list_outbox(db.session, limit=10).items) == 2
    output = app.test_cli_runner().invoke(args=["outbox", "--to", "one@example.test"]).output
    assert "to one@example.test: Confirm your email address" in output and "verify-email?token=" in output
