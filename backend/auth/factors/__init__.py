"""Sign-in factors beside the password: Google and Apple ID tokens, email codes, anonymous accounts, TOTP.

Parts: ``id_tokens`` (verifying a provider's ID token), ``social`` (accounts behind a
provider identity: sign in, link, unlink), ``email_codes`` (passwordless codes),
``anonymous`` (device-only accounts and their upgrade), ``totp`` (two-factor and the
second step of a sign-in), ``export``; ``routes``/``schemas``/``models``.
"""
