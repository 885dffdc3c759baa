"""Jobs in the console: queue depths, a failed job with its error, retry and delete (audited)."""
from __future__ import annotations

from rq.registry import FailedJobRegistry
from sqlalchemy import select

from backend.audit.models import AuditEntry
from backend.common.jobs import get_queue
from backend.extensions import db
from tests.console.conftest import csrf_of


def _failed_job(app, run_jobs) -> str:
    job = get_queue("default").enqueue("math.sqrt", kwargs={"bogus": 1}, job_id="console-failing-job")
    run_jobs(("default",))
    assert job.id in FailedJobRegistry(queue=get_queue("default")).get_job_ids()
    return job.id


def test_jobs_page_shows_depths_failed_error_and_periodic(staff_client, app, run_jobs):
    job_id = _failed_job(app, run_jobs)
    admin = staff_client("admin")
    html = admin.get("/admin/jobs/").get_data(as_text=True)
    assert job_id in html and "math.sqrt" in html and "TypeError" in html
    assert "reconcile-deliveries" in html  # the periodic table
    detail = admin.get(f"/admin/jobs/failed/default/{job_id}").get_data(as_text=True)
    assert "Traceback" in detail and "bogus" in detail


def test_jobs_retry_requeues_and_delete_removes_both_audited(staff_client, app, run_jobs):
    job_id = _failed_job(app, run_jobs)
    admin = staff_client("admin")
    token = csrf_of(admin, "/admin/jobs/")
    assert admin.post(f"/admin/jobs/failed/default/{job_id}/retry", data={"csrf_token": token}).status_code == 302
    assert job_id in get_queue("default").job_ids
    run_jobs(("default",))  # fails again
    assert admin.post(f"/admin/jobs/failed/default/{job_id}/delete", data={"csrf_token": token}).status_code == 302
    assert job_id not in FailedJobRegistry(queue=get_queue("default")).get_job_ids()
    actions = [e.action for e in db.session.scalars(select(AuditEntry).where(AuditEntry.object_id == job_id)
                                                    .order_by(AuditEntry.id))]
    assert actions == ["job.retry", "job.delete"]
    missing = admin.post(f"/admin/jobs/failed/default/{job_id}/delete", data={"csrf_token": token})
    assert "No such failed job" in admin.get(missing.headers["Location"]).get_data(as_text=True)


def test_outboxes_list_mail_and_push(staff_client, make_user, app):
    from backend.auth.models import OutboxMail

    db.session.add(OutboxMail(message_id="<m1@test>", recipient="reader@example.test", subject="Hello <b>",
                              body_text="body"))
    db.session.commit()
    admin = staff_client("admin")
    html = admin.get("/admin/outbox/mail/?to=reader@example.test").get_data(as_text=True)
    assert "Hello &lt;b&gt;" in html
    assert staff_client("marketer").get("/admin/outbox/push/").status_code == 200
    assert staff_client("marketer").get("/admin/outbox/mail/").status_code == 403
