"""The staff console (Flask-Admin), one ``Admin`` per app: see PITFALLS.md."""
from __future__ import annotations

from flask import Flask
from flask_admin import Admin

from admin.login import init_staff_login
from admin.views import ConsoleHomeView


def init_admin(app: Flask) -> Admin:
    """Create and bind this app's console at /admin."""
    init_staff_login(app)  # staff sign-in at /admin/login, before the console's own views
    console = Admin(app, name="Groundwork", url="/admin", index_view=ConsoleHomeView(url="/admin"))
    app.extensions["groundwork.admin"] = console
    return console
