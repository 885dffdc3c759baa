"""Jobs (admin): queue depths, failed jobs with their error (retry, delete), scheduled and periodic work.

Built on RQ's registries rather than mounting rq-dashboard: its retry and delete are
JavaScript calls without a CSRF token and leave no audit entry, and every console
action here must have both.
"""
from __future__ import annotations

from datetime import UTC, datetime

from flask import flash, redirect, request, url_for
from flask_admin import expose
from werkzeug.wrappers import Response

from admin.access import StaffView, console_action, current_actor
from backend.audit.services import record
from backend.common import job_queues
from backend.common.errors import DomainError
from backend.common.jobs import QUEUES, redis_client
from backend.extensions import db
from jobs.periodic import PERIODIC
from jobs.scheduler import slot_of

ADMIN = frozenset({"admin"})


def _periodic_rows() -> list[dict]:
    now = datetime.now(UTC)
    connection = redis_client()
    rows = []
    for entry in PERIODIC:
        slot = slot_of(entry, now)
        seconds = entry.every.total_seconds()
        rows.append({"name": entry.name, "func": entry.func, "queue": entry.queue, "every": entry.every,
                     "this_slot_enqueued": bool(connection.exists(f"groundwork:periodic:periodic-{entry.name}-{slot}")),
                     "next_at": datetime.fromtimestamp((slot + 1) * seconds, UTC)})
    return rows


class JobsView(StaffView):
    """The RQ queues at a glance, and what to do about failures."""

    roles = ADMIN
    action_roles = {"retry": ADMIN, "delete": ADMIN}

    @expose("/")
    def index(self):  # noqa: ANN201 - Flask-Admin view
        queue = request.args.get("queue") if request.args.get("queue") in QUEUES else None
        shown = [queue] if queue else list(QUEUES)
        failed = [job for name in shown for job in job_queues.failed_jobs(queue=name)]
        scheduled = [job for name in shown for job in job_queues.scheduled_jobs(queue=name)]
        return self.render("console/jobs.html", depths=job_queues.queue_depths(), failed=failed,
                           scheduled=scheduled, periodic=_periodic_rows(), queue=queue, queues=QUEUES)

    @expose("/failed/<queue>/<job_id>")
    def failed(self, queue: str, job_id: str):  # noqa: ANN201 - Flask-Admin view
        if queue not in QUEUES:
            return redirect(url_for(".index"))
        try:
            job = job_queues.failed_job(queue=queue, job_id=job_id)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        return self.render("console/job.html", job=job)

    def _act(self, verb: str, queue: str, job_id: str) -> Response:
        if queue not in QUEUES:
            return redirect(url_for(".index"))
        try:
            before = job_queues.failed_job(queue=queue, job_id=job_id)
            (job_queues.retry_failed_job if verb == "retry" else job_queues.delete_failed_job)(
                queue=queue, job_id=job_id)
        except DomainError as exc:
            flash(exc.message, "error")
            return redirect(url_for(".index"))
        record(db.session, actor=current_actor(), action=f"job.{verb}", object_type="job", object_id=job_id,
               before={"queue": queue, "func": before.func, "status": before.status, "kwargs": before.kwargs},
               after={"status": "queued" if verb == "retry" else "deleted"})
        flash(f"Job {job_id} {'put back on ' + queue if verb == 'retry' else 'deleted'}.", "success")
        return redirect(url_for(".index"))

    @expose("/failed/<queue>/<job_id>/retry", methods=("POST",))
    @console_action("retry")
    def retry(self, queue: str, job_id: str) -> Response:
        """Put a failed job back on its queue."""
        return self._act("retry", queue, job_id)

    @expose("/failed/<queue>/<job_id>/delete", methods=("POST",))
    @console_action("delete")
    def delete(self, queue: str, job_id: str) -> Response:
        """Drop a failed job."""
        return self._act("delete", queue, job_id)
