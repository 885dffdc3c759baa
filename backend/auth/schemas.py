"""Request and response schemas of /v1/auth, /v1/me and the JWKS."""
from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from backend.auth.passwords import MAX_LENGTH
from backend.common.locales import is_language_tag, is_time_zone

MAX_PROPERTIES = 50
MAX_PROPERTIES_BYTES = 8192
MAX_PROPERTY_KEY = 64



class EmailField(fields.Email):
    """An email address, trimmed and lower-cased (addresses are compared case-insensitively)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value.strip().lower() if isinstance(value, str) else value, attr, data, **kwargs)


Email = EmailField(required=True, validate=validate.Length(max=254))
# Long enough for any passphrase the policy accepts; the policy itself says what is wrong.
Password = fields.String(required=True, validate=validate.Length(min=1, max=MAX_LENGTH * 4), load_only=True)
DeviceName = fields.String(load_default=None, validate=validate.Length(max=100))
Platform = fields.String(load_default=None, validate=validate.OneOf(["ios", "android", "web", "other"]))


def validate_time_zone(value: str) -> None:
    """An IANA zone name known to zoneinfo."""
    if not is_time_zone(value):
        raise ValidationError("Not an IANA time zone name (for example Europe/Paris).")


def validate_locale(value: str) -> None:
    """A BCP 47 language tag such as en, pt-BR, zh-Hant-TW."""
    if not is_language_tag(value):
        raise ValidationError("Not a BCP 47 language tag (for example en, pt-BR).")


def validate_properties(value: dict[str, Any]) -> None:
    """Custom properties: few keys, short names, small JSON."""
    if len(value) > MAX_PROPERTIES:
        raise ValidationError(f"At most {MAX_PROPERTIES} properties.")
    if any(not key or len(key) > MAX_PROPERTY_KEY for key in value):
        raise ValidationError(f"Property names are 1 to {MAX_PROPERTY_KEY} characters.")
    if len(json.dumps(value, separators=(",", ":"))) > MAX_PROPERTIES_BYTES:
        raise ValidationError(f"Properties are at most {MAX_PROPERTIES_BYTES} bytes of JSON.")


class UserSummaryReadSchema(Schema):
    id = fields.UUID()
    email = fields.String(allow_none=True)
    email_verified = fields.Boolean()
    role = fields.String()
    display_name = fields.String(allow_none=True)
    is_anonymous = fields.Boolean()


class TokenReadSchema(Schema):
    """A signed-in session, or (sign-in with two-factor on) the challenge to complete."""

    access_token = fields.String(metadata={"description": "JWT for `Authorization: Bearer`, ~15 min"})
    refresh_token = fields.String(metadata={"description": "opaque, single use: rotate with /v1/auth/refresh"})
    token_type = fields.String()
    expires_in = fields.Integer()
    session_id = fields.UUID()
    user = fields.Nested(UserSummaryReadSchema)
    mfa_required = fields.Boolean()
    mfa_token = fields.String()
    methods = fields.List(fields.String())


class RegisterCreateSchema(Schema):
    email = Email
    password = Password
    display_name = fields.String(load_default=None, validate=validate.Length(max=100))
    locale = fields.String(load_default=None, validate=validate_locale)
    time_zone = fields.String(load_default=None, validate=validate_time_zone)


class LoginCreateSchema(Schema):
    email = Email
    password = Password
    device_name = DeviceName
    platform = Platform


class RefreshCreateSchema(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True)


class EmailRequestCreateSchema(Schema):
    """An address to send a verification or reset mail to."""

    email = Email


class TokenCreateSchema(Schema):
    """A single-use token from an emailed link."""

    token = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True)


class TokenQueryArgsSchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class PasswordResetCreateSchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True)
    password = Password


class PasswordChangeCreateSchema(Schema):
    current_password = Password
    new_password = Password
    device_name = DeviceName
    platform = Platform


class EmailChangeCreateSchema(Schema):
    new_email = Email
    password = fields.String(load_default=None, validate=validate.Length(max=MAX_LENGTH * 4), load_only=True)


class DeletionCreateSchema(Schema):
    password = fields.String(load_default=None, validate=validate.Length(max=MAX_LENGTH * 4), load_only=True)


class StatusReadSchema(Schema):
    status = fields.String()
    message = fields.String()


class MeReadSchema(Schema):
    id = fields.UUID()
    email = fields.String(allow_none=True)
    email_verified = fields.Boolean()
    role = fields.String()
    status = fields.String()
    is_anonymous = fields.Boolean()
    has_password = fields.Boolean()
    display_name = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    locale = fields.String()
    time_zone = fields.String()
    properties = fields.Dict()
    created_at = fields.String()
    deletion_scheduled_for = fields.String(allow_none=True)


class MeUpdateSchema(Schema):
    """Writable profile fields (an allow-list: anything else is refused)."""

    display_name = fields.String(allow_none=True, validate=validate.Length(max=100))
    first_name = fields.String(allow_none=True, validate=validate.Length(max=100))
    locale = fields.String(validate=validate_locale)
    time_zone = fields.String(validate=validate_time_zone)
    properties = fields.Dict(keys=fields.String(), metadata={"description": "merged; a null value removes a key"})

    @validates("properties")
    def _properties(self, value: dict[str, Any], **_: Any) -> None:
        validate_properties(value)


class SessionReadSchema(Schema):
    id = fields.UUID()
    device_name = fields.String(allow_none=True)
    platform = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    created_at = fields.DateTime()
    last_used_at = fields.DateTime()
    current = fields.Boolean()


class SecurityEventReadSchema(Schema):
    id = fields.UUID()
    kind = fields.String(metadata={"description": "passkey_added, passkey_removed, passkey_clone_suspected, "
                                                  "unproven_claim_voided"})
    ip = fields.String(allow_none=True)
    details = fields.Dict(metadata={"description": "what the event concerned (a passkey's name, what was removed)"})
    created_at = fields.DateTime()


class JwksReadSchema(Schema):
    keys = fields.List(fields.Dict())


class AppleAppSiteAssociationReadSchema(Schema):
    webcredentials = fields.Dict(metadata={"description": '{"apps": ["TEAMID.bundle.id", ...]}: passkeys'})
    applinks = fields.Dict(metadata={"description": "universal links: the account email links open in the app"})


class AssetLinkReadSchema(Schema):
    relation = fields.List(fields.String())
    target = fields.Dict()
