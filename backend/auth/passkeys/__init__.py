"""Passkeys (WebAuthn): the phone's Secure Enclave or Keystore holds the key, the face or finger unlocks it.

Parts: ``relying_party`` (RP ID, origins, association files, from config), ``challenges``
(single use), ``registration`` (add one), ``sign_in`` (use one; clone detection),
``services`` (list, rename, remove), ``routes``/``schemas``/``models``.
"""
