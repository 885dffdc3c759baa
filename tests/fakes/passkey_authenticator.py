"""A software passkey authenticator: what a phone's Secure Enclave or Keystore does, in process.

It answers the server's WebAuthn options (their JSON form, as the app passes them to the
platform API) with real ceremonies built from Yubico's ``fido2`` data types: a fresh P-256
key per credential, authenticator data with the RP ID hash, flags and signature counter,
a ``packed`` self-attestation (or ``none``) signed with the credential key, and
assertions signed over authenticator data + SHA-256(clientDataJSON). The server verifies
them with another library (py_webauthn), so nothing here is the server checking itself.

Knobs for the attacks the tests stage: ``user_verified`` (no face or finger), ``origin``
(a phishing site), ``synced`` (iCloud/Google passkeys: BE/BS flags, counter always 0), and
``clone()`` (a copy of the key whose counter lags behind the original).
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.webauthn import (
    AttestationObject,
    AttestedCredentialData,
    AuthenticationResponse,
    AuthenticatorAssertionResponse,
    AuthenticatorAttestationResponse,
    AuthenticatorData,
    CollectedClientData,
    PublicKeyCredentialCreationOptions,
    PublicKeyCredentialRequestOptions,
    RegistrationResponse,
)

FLAG = AuthenticatorData.FLAG
AAGUID = bytes.fromhex("fbfc3007154e4ecc8c0b6e020557d7bd")  # iCloud Keychain's, as a phone would send


@dataclass
class StoredKey:
    """One credential the authenticator holds: id, private key, its user handle and counter."""

    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    """A phone with a platform authenticator, for one origin (a web page, or an app's origin)."""

    origin: str
    user_verified: bool = True
    synced: bool = False
    attestation: str = "packed"  # or "none"
    keys: list[StoredKey] = field(default_factory=list)

    def _flags(self, *, attested: bool = False) -> AuthenticatorData.FLAG:
        flags = FLAG.UP | (FLAG.UV if self.user_verified else 0)
        if self.synced:
            flags |= FLAG.BE | FLAG.BS
        return flags | (FLAG.AT if attested else 0)

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        """``navigator.credentials.create()``: a new credential for the options, as JSON."""
        public_key = PublicKeyCredentialCreationOptions.from_dict(options)
        if not any(p.alg == ES256.ALGORITHM for p in public_key.pub_key_cred_params):
            raise ValueError("the server does not accept ES256")
        excluded = {d.id for d in public_key.exclude_credentials or []}
        if any(k.credential_id in excluded for k in self.keys):
            raise ValueError("InvalidStateError: this authenticator already holds a credential for the account")
        key = StoredKey(credential_id=os.urandom(32), private_key=ec.generate_private_key(ec.SECP256R1()),
                        rp_id=public_key.rp.id, user_handle=public_key.user.id)
        self.keys.append(key)
        client_data = CollectedClientData.create(type="webauthn.create", challenge=public_key.challenge,
                                                 origin=self.origin)
        credential_data = AttestedCredentialData.create(
            AAGUID, key.credential_id, ES256.from_cryptography_key(key.private_key.public_key()))
        auth_data = AuthenticatorData.create(hashlib.sha256(key.rp_id.encode()).digest(),
                                             self._flags(attested=True), key.sign_count, credential_data)
        if self.attestation == "packed":  # self attestation: signed by the new credential's own key
            signature = key.private_key.sign(auth_data + client_data.hash, ec.ECDSA(hashes.SHA256()))
            statement = {"alg": ES256.ALGORITHM, "sig": signature}
        else:
            statement = {}
        response = RegistrationResponse(
            raw_id=key.credential_id,
            response=AuthenticatorAttestationResponse(
                client_data=client_data,
                attestation_object=AttestationObject.create(self.attestation, auth_data, statement)),
        )
        body = json.loads(json.dumps(dict(response)))
        body["response"]["transports"] = ["internal", "hybrid"]
        return body

    def get(self, options: dict[str, Any], *, key: StoredKey | None = None) -> dict[str, Any]:
        """``navigator.credentials.get()``: an assertion by a matching credential (newest first), as JSON."""
        request = PublicKeyCredentialRequestOptions.from_dict(options)
        allowed = {d.id for d in request.allow_credentials or []}
        candidates = [k for k in reversed(self.keys) if k.rp_id == request.rp_id
                      and (not allowed or k.credential_id in allowed)]
        key = key or (candidates[0] if candidates else None)
        if key is None:
            raise LookupError("NotAllowedError: no credential for this site on this phone")
        if not self.synced:
            key.sign_count += 1
        client_data = CollectedClientData.create(type="webauthn.get", challenge=request.challenge,
                                                 origin=self.origin)
        auth_data = AuthenticatorData.create(hashlib.sha256(key.rp_id.encode()).digest(), self._flags(),
                                             key.sign_count)
        signature = key.private_key.sign(auth_data + client_data.hash, ec.ECDSA(hashes.SHA256()))
        response = AuthenticationResponse(
            raw_id=key.credential_id,
            response=AuthenticatorAssertionResponse(client_data=client_data, authenticator_data=auth_data,
                                                    signature=signature, user_handle=key.user_handle),
        )
        return json.loads(json.dumps(dict(response)))

    def clone(self) -> SoftAuthenticator:
        """A copy of this phone's keys, counters included (an extracted key); from now on they diverge."""
        return copy.deepcopy(self)
