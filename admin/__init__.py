"""The staff console (Flask-Admin), one ``Admin`` per app: see PITFALLS.md."""
from __future__ import annotations

from flask import Blueprint, Flask
from flask_admin import Admin

from admin.home import ConsoleHomeView
from admin.login import init_staff_login
from admin.security import csp_nonce, init_console_security
from backend.audit.services import install_audit_hooks
from backend.extensions import db


def console_views() -> list:
    """Every console view, in menu order (the access-matrix test walks this list)."""
    from admin.audit_log import AuditLogView
    from admin.campaigns import CampaignsView
    from admin.dashboards import DashboardsView
    from admin.jobs import JobsView
    from admin.moderation import ModerationView
    from admin.outboxes import MailOutboxView, PushOutboxView
    from admin.users import UsersView

    return [
        UsersView(name="Users", endpoint="console_users", url="/admin/users"),
        ModerationView(name="Moderation", endpoint="console_moderation", url="/admin/moderation"),
        CampaignsView(name="Campaigns", endpoint="console_campaigns", url="/admin/campaigns"),
        DashboardsView(name="Dashboards", endpoint="console_dashboards", url="/admin/dashboards"),
        JobsView(name="Jobs", endpoint="console_jobs", url="/admin/jobs"),
        AuditLogView(name="Audit log", endpoint="console_audit", url="/admin/audit"),
        MailOutboxView(name="Mail outbox", endpoint="console_mail_outbox", url="/admin/outbox/mail"),
        PushOutboxView(name="Push outbox", endpoint="console_push_outbox", url="/admin/outbox/push"),
    ]


def init_admin(app: Flask) -> Admin:
    """Create and bind this app's console at /admin."""
    init_staff_login(app)  # staff sign-in at /admin/login, before the console's own views
    init_console_security(app)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.register_blueprint(Blueprint("console_assets", __name__, static_folder="static",
                                     static_url_path="/admin/assets"))
    install_audit_hooks(db.session.session_factory.class_)
    console = Admin(app, name="Groundwork", url="/admin", index_view=ConsoleHomeView(url="/admin"),
                    csp_nonce_generator=csp_nonce)
    console.add_views(*console_views())
    app.extensions["groundwork.admin"] = console
    return console
