"""Console helpers: a test client signed in to /admin as a staff member of a given role."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.auth.conftest import PASSWORD
from tests.auth.conftest import auth_headers as auth_headers  # fixture re-exports
from tests.auth.conftest import make_user as make_user
from tests.campaigns.conftest import populate as populate

CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def csrf_of(client: FlaskClient, path: str = "/admin/") -> str:
    """A CSRF token from a console page the client can open."""
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def staff_client(app: Flask, client: FlaskClient, make_user: Callable[..., Any]) -> Callable[..., FlaskClient]:
    """``staff_client("marketer")``: a client signed in to the console as a new staff member of that role."""

    def sign_in(role: str, **fields: Any) -> FlaskClient:
        staff = make_user(role=role, **fields)
        staff_client_ = app.test_client()
        token = csrf_of(staff_client_, "/admin/login")
        answer = staff_client_.post("/admin/login", data={"csrf_token": token, "email": staff.email,
                                                          "password": PASSWORD})
        assert answer.status_code == 302, answer.get_data(as_text=True)
        staff_client_.staff = staff  # type: ignore[attr-defined]
        return staff_client_

    return sign_in
