"""Console views. Every view requires a signed-in staff member (see admin.access)."""
from __future__ import annotations

from flask_admin import AdminIndexView, expose

from admin.access import StaffOnlyMixin


class ConsoleHomeView(StaffOnlyMixin, AdminIndexView):
    """Landing page of the console."""

    @expose("/")
    def index(self):  # noqa: ANN201 - Flask-Admin view
        return self.render("admin/index.html")
