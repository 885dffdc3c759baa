"""Request and response schemas of /v1/auth/passkeys."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from backend.auth.schemas import DeviceName, EmailField, Platform

Credential = fields.Dict(
    required=True, load_only=True,
    metadata={"description": "the PublicKeyCredential the platform returned, in its JSON form "
                             "(`toJSON()`: id, rawId, type, response with base64url members)"})


class PasskeyOptionsReadSchema(Schema):
    options = fields.Dict(metadata={"description": "pass to the platform passkey API as `publicKey` "
                                                   "(base64url members, WebAuthn's JSON form)"})


class PasskeyRegistrationOptionsCreateSchema(Schema):
    password = fields.String(load_default=None, load_only=True, validate=validate.Length(max=1024),
                             metadata={"description": "the current password, needed when the last sign-in "
                                                      "is older than PASSKEY_FRESH_SIGN_IN_S"})


class PasskeyCreateSchema(Schema):
    credential = Credential
    device_name = fields.String(load_default=None, validate=validate.Length(max=100),
                                metadata={"description": "name shown in the passkey list (default: Passkey)"})


class PasskeyUpdateSchema(Schema):
    device_name = fields.String(required=True, validate=validate.Length(min=1, max=100))


class PasskeyReadSchema(Schema):
    id = fields.UUID()
    device_name = fields.String(allow_none=True)
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    transports = fields.List(fields.String())
    aaguid = fields.String(allow_none=True, metadata={"description": "model of the authenticator (zeros: not told)"})
    backup_eligible = fields.Boolean()
    synced = fields.Boolean(metadata={"description": "backed up to the platform's cloud keychain"})
    status = fields.String(metadata={"description": "active, or disabled (see disabled_reason)"})
    disabled_reason = fields.String(allow_none=True, metadata={"description": "clone_suspected"})


class PasskeySignInOptionsCreateSchema(Schema):
    email = EmailField(load_default=None, validate=validate.Length(max=254),
                       metadata={"description": "the account to sign in to; omit for a discoverable passkey "
                                                "(the phone offers the passkeys it holds for this site)"})


class PasskeySignInCreateSchema(Schema):
    credential = Credential
    device_name = DeviceName
    platform = Platform

