"""Accounts: sign-up to deletion, tokens, sessions, roles."""
from __future__ import annotations

import click
from flask import Flask

from backend.common.ratelimit import BEARER_SUBJECT


def init_app(app: Flask) -> None:
    """Signing keys, the principal loader behind ``@require``, and ``flask create-staff``."""
    from backend.auth import jwt_loaders  # noqa: F401 - registers flask-jwt-extended's callbacks
    from backend.auth.deletion import register_exporter
    from backend.auth.factors.export import export_sign_in_factors
    from backend.auth.passkeys.credentials import export_passkeys
    from backend.auth.principal import bearer_subject, load_principal
    from backend.auth.security_events import export_events
    from backend.auth.tokens import init_keys

    init_keys(app)
    app.extensions["groundwork.principal_loader"] = load_principal
    app.extensions[BEARER_SUBJECT] = bearer_subject
    register_exporter("sign_in_factors", export_sign_in_factors)
    register_exporter("passkeys", export_passkeys)
    register_exporter("security_events", export_events)

    @app.cli.command("create-staff")
    @click.option("--email", required=True, help="sign-in address of the staff member")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
                  help="password (prompted when omitted)")
    @click.option("--role", type=click.Choice(["moderator", "marketer", "analyst", "admin"]), required=True)
    def create_staff(email: str, password: str, role: str) -> None:
        """Create (or promote) a staff account with a verified email."""
        from backend.auth.accounts import create_staff_account
        from backend.common.errors import DomainError

        try:
            user = create_staff_account(email=email, password=password, role=role)
        except DomainError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from exc
        click.echo(f"staff account {user.email} ({user.role}) id={user.id}")
