"""The console's landing page: the sections the signed-in role may open."""
from __future__ import annotations

from flask_admin import AdminIndexView, expose

from admin.access import STAFF_ROLES, StaffView, current_actor

DESCRIPTIONS = {
    "console_users": "Search accounts; suspend, verify, sign out, delete.",
    "console_moderation": "Reported media and accounts, oldest first: dismiss, remove, restore, warn, ban.",
    "console_campaigns": "Build, preview, test-send, schedule and watch push campaigns.",
    "console_dashboards": "Actives, retention, funnels and what each campaign converted.",
    "console_jobs": "Queue depths, failed jobs, scheduled and periodic work.",
    "console_audit": "Every staff action, with before and after values.",
    "console_mail_outbox": "Mails the outbox backend kept instead of sending.",
    "console_push_outbox": "Pushes the outbox backend recorded instead of sending.",
}


class ConsoleHomeView(StaffView, AdminIndexView):
    """Landing page of the console (every staff role)."""

    roles = STAFF_ROLES

    @expose("/")
    def index(self):  # noqa: ANN201 - Flask-Admin view
        views = [{"name": v.name, "url": v.url, "description": DESCRIPTIONS.get(v.endpoint, "")}
                 for v in self.admin._views if v is not self and v.is_accessible()]
        return self.render("console/home.html", views=views, actor=current_actor())
