"""Every console page and action checks the staff role: a matrix generated from the registered views.

For each registered console view, each of its URL rules, and each role (plus nobody
signed in): a GET opens only for the view's roles; a POST runs only for the roles of
the action it is. A new view or action is in the matrix without editing this file, and
a POST handler that names no action fails here.
"""
from __future__ import annotations

import uuid

import pytest

from admin import console_views
from admin.access import StaffView
from backend.common.access import STAFF_ROLES
from tests.console.conftest import csrf_of

ROLES = sorted(STAFF_ROLES)
SAMPLE_ARGS = {"user_id": uuid.uuid4(), "campaign_id": uuid.uuid4(), "case_id": uuid.uuid4(), "queue": "default",
               "job_id": "nope", "filename": "console.css"}


def _rules(app, view: StaffView):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(view.endpoint + "."):
            yield rule


def _handler(view: StaffView, rule):
    return getattr(view, rule.endpoint.split(".", 1)[1])


def _path(rule) -> str:
    path = rule.rule
    for name in rule.arguments:
        path = path.replace(f"<uuid:{name}>", str(SAMPLE_ARGS[name])).replace(f"<{name}>", str(SAMPLE_ARGS[name]))
    return path


VIEWS = [(view.endpoint, view) for view in console_views()]


def test_matrix_covers_every_registered_view(app):
    registered = {v.endpoint for v in app.extensions["groundwork.admin"]._views} - {"admin"}
    assert registered == {endpoint for endpoint, _ in VIEWS}
    for endpoint, view in VIEWS:
        assert isinstance(view, StaffView), f"{endpoint} is not a StaffView"
        assert view.roles <= STAFF_ROLES


def test_every_console_post_is_a_named_action_with_roles(app):
    for endpoint, view in VIEWS:
        for rule in _rules(app, view):
            if "POST" in rule.methods:
                names = getattr(_handler(view, rule), "_console_actions", None)
                assert names, f"{rule.endpoint} handles POST without @console_action"
                for name in names:
                    assert name in view.action_roles, f"{rule.endpoint}: action {name} has no roles"
                    assert view.action_roles[name] <= view.roles


@pytest.mark.parametrize("role", [*ROLES, None])
@pytest.mark.parametrize(("endpoint", "view"), VIEWS, ids=[e for e, _ in VIEWS])
def test_console_view_and_actions_follow_the_role_matrix(app, client, staff_client, endpoint, view, role):
    http = staff_client(role) if role else client
    for rule in _rules(app, view):
        path = _path(rule)
        if "GET" in rule.methods:
            answer = http.get(path)
            form_of = getattr(_handler(view, rule), "_console_form_of", None)  # the form of an action
            allowed = view.action_roles[form_of] if form_of else view.roles
            if role is None:
                assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"], path
            elif role in allowed:
                assert answer.status_code in (200, 302, 400), (path, role, answer.status_code)
                assert answer.status_code != 403
            else:
                assert answer.status_code == 403, (path, role, answer.status_code)
        if "POST" in rule.methods:
            handler = _handler(view, rule)
            field = handler._console_action_field
            token = csrf_of(http) if role else "none"
            for name in handler._console_actions:
                data = {"csrf_token": token, **({field: name} if field else {})}
                answer = http.post(path, data=data)
                if role is None:  # no session, so no valid token: refused before the view runs
                    assert answer.status_code == 400, path
                elif role in view.action_roles[name]:
                    assert answer.status_code != 403, (path, name, role)
                else:
                    assert answer.status_code == 403, (path, name, role, answer.status_code)


def test_console_post_without_csrf_token_refused(staff_client):
    admin = staff_client("admin")
    answer = admin.post("/admin/users/confirm", data={"action": "suspend", "user_id": str(uuid.uuid4())})
    assert answer.status_code == 400 and "form expired" in answer.get_data(as_text=True)


def test_console_pages_carry_a_strict_content_security_policy(staff_client):
    admin = staff_client("admin")
    answer = admin.get("/admin/users/")
    policy = answer.headers["Content-Security-Policy"]
    script_src = policy.split("script-src")[1].split(";")[0]
    assert "'self' 'nonce-" in script_src and "'unsafe-inline'" not in script_src
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    nonce = policy.split("'nonce-")[1].split("'")[0]
    html = answer.get_data(as_text=True)
    scripts = html.count("<script")
    assert scripts and html.count(f'nonce="{nonce}"') >= scripts - html.count("<script type=\"application/json\"")
    assert " onclick=" not in html and "https://" not in html.split("<body")[0]
