"""Request and response schemas of the sign-in factors: social, email code, anonymous, TOTP."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from backend.auth.schemas import DeviceName, Email, Password, Platform

IdToken = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=8192),
                        metadata={"description": "the ID token (JWT) the provider's SDK returned"})
Nonce = fields.String(load_default=None, load_only=True, validate=validate.Length(min=1, max=512),
                      metadata={"description": "the raw nonce the app passed to the provider (Apple: before hashing)"})
SecondFactorCode = fields.String(required=True, load_only=True, validate=validate.Length(min=6, max=32),
                                 metadata={"description": "a 6-digit TOTP code or a recovery code"})


class SocialSignInCreateSchema(Schema):
    id_token = IdToken
    nonce = Nonce
    device_name = DeviceName
    platform = Platform


class IdentityCreateSchema(Schema):
    id_token = IdToken
    nonce = Nonce


class IdentityReadSchema(Schema):
    provider = fields.String()
    email = fields.String(allow_none=True, metadata={"description": "as the provider last sent it"})
    is_private_email = fields.Boolean(metadata={"description": "an Apple private relay address"})
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)


class EmailCodeRequestCreateSchema(Schema):
    email = Email


class AcceptedReadSchema(Schema):
    message = fields.String()


class EmailCodeVerifyCreateSchema(Schema):
    email = Email
    code = fields.String(required=True, load_only=True, validate=validate.Regexp(r"^\d{6}$"),
                         metadata={"description": "the 6-digit code from the email"})
    device_name = DeviceName
    platform = Platform


class AnonymousCreateSchema(Schema):
    device_name = DeviceName
    platform = Platform


class AnonymousUpgradeCreateSchema(Schema):
    email = Email
    password = Password


class MfaStatusReadSchema(Schema):
    totp_enabled = fields.Boolean()
    recovery_codes_remaining = fields.Integer()


class TotpEnrolmentReadSchema(Schema):
    secret = fields.String(metadata={"description": "base32 secret, shown this once"})
    otpauth_uri = fields.String(metadata={"description": "otpauth:// URI for a QR code"})


class TotpCodeCreateSchema(Schema):
    code = SecondFactorCode


class TotpConfirmCreateSchema(Schema):
    code = fields.String(required=True, load_only=True, validate=validate.Regexp(r"^\d{6}$"),
                         metadata={"description": "the current 6-digit code from the authenticator app"})


class RecoveryCodesReadSchema(Schema):
    enabled = fields.Boolean()
    recovery_codes = fields.List(fields.String(), metadata={"description": "one-time codes, shown this once"})


class MfaLoginCreateSchema(Schema):
    mfa_token = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=200))
    code = SecondFactorCode
