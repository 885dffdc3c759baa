"""The OpenAPI document lists each operation's real statuses, errors in the common shape, no catch-all."""
from __future__ import annotations

from typing import Any

import pytest

from tests.security.conftest import collected_api, resolve

_, SPEC = collected_api()
OPERATIONS = [(path, method, operation) for path, item in SPEC["paths"].items()
              for method, operation in item.items() if method in {"get", "post", "put", "patch", "delete"}]


def _label(value: Any) -> str:
    return f"{value[1].upper()} {value[0]}" if isinstance(value, tuple) else str(value)


@pytest.mark.parametrize("entry", OPERATIONS, ids=_label)
def test_operation_declares_no_default_response(entry):
    assert "default" not in entry[2]["responses"]


@pytest.mark.parametrize("entry", OPERATIONS, ids=_label)
def test_operation_error_statuses_use_the_error_shape(entry):
    for status, response in entry[2]["responses"].items():
        if int(status) < 400:
            continue
        body = resolve(SPEC, response)["content"]["application/json"]["schema"]
        assert resolve(SPEC, body)["properties"].keys() == {"error"}, status


@pytest.mark.parametrize("entry", OPERATIONS, ids=_label)
def test_operation_declares_what_the_stack_answers(entry):
    path, method, operation = entry
    declared = set(operation["responses"])
    assert {"400", "429", "503"} <= declared
    if operation.get("security"):
        assert {"401", "403"} <= declared
    if "{" in path:
        assert "404" in declared


def test_answers_declares_statuses_of_one_operation_only():
    """@answers(410) on the verification link adds 410 there, not to its neighbours."""
    assert "410" in SPEC["paths"]["/v1/auth/verify-email"]["get"]["responses"]
    assert "410" not in SPEC["paths"]["/v1/auth/resend-verification"]["post"]["responses"]
    assert "409" in SPEC["paths"]["/v1/campaigns"]["post"]["responses"]  # @idempotent
