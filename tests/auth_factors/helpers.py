"""Small helpers shared by the factor tests."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], *, hmac_key: bytes | None = None) -> str:
    """A JWT built by hand, as an attacker would (PyJWT refuses to sign these)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = b64(hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()) if hmac_key else ""
    return f"{signing_input}.{signature}"


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code, error
    return error


def bearer(body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def totp_code(secret: str, steps_from_now: int = 0) -> str:
    """The code an authenticator shows ``steps_from_now`` 30-second steps from now (computed now)."""
    import time

    import pyotp

    return pyotp.TOTP(secret).at(time.time() + 30 * steps_from_now)


def enable_totp(client: Any, headers: dict[str, str]) -> tuple[str, list[str]]:
    """Turn TOTP on through the API; confirmed with the previous step's code, so now and next stay usable."""
    started = client.post("/v1/auth/mfa/totp", headers=headers)
    assert started.status_code == 201, started.get_json()
    secret = started.get_json()["secret"]
    confirmed = client.post("/v1/auth/mfa/totp/confirm", headers=headers, json={"code": totp_code(secret, -1)})
    assert confirmed.status_code == 200, confirmed.get_json()
    return secret, confirmed.get_json()["recovery_codes"]


def last_mail(to: str) -> Any:
    """The newest outbox mail to ``to``."""
    from sqlalchemy import select

    from backend.auth.models import OutboxMail
    from backend.extensions import db

    return db.session.scalars(select(OutboxMail).where(OutboxMail.recipient == to)
                              .order_by(OutboxMail.created_at.desc())).first()


def mailed_code(run_jobs: Any, to: str) -> str:
    """Send queued mail, then read the six-digit code out of the newest one to ``to``."""
    import re

    run_jobs()
    mail = last_mail(to)
    assert mail is not None, f"no mail to {to}"
    return re.search(r"\b(\d{6})\b", mail.body_text).group(1)
