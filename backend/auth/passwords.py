"""Password hashing (Argon2id) and the password policy (NIST 800-63B).

Hashing: Argon2id with explicit parameters at or above OWASP's minimum (19 MiB, t=2,
p=1), so a library upgrade cannot silently change them; hashes made with other
parameters are upgraded on the next successful sign-in (``needs_rehash``).

Policy: any Unicode, compared after NFKC normalisation; 8 to 256 characters; rejected
when it is a common or breached password (the 30,000 most common passwords shipped in
the ``zxcvbn`` package: no network call), a repetition of one character, or the
account's own email address. No composition rules (NIST 800-63B §3.1.1.2).
"""
from __future__ import annotations

import contextlib
import unicodedata
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from backend.auth import hash_admission
from backend.common.errors import ValidationFailed

MIN_LENGTH = 8
MAX_LENGTH = 256
ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_PARALLELISM = 1
_CONTEXT_WORDS = frozenset({"groundwork", "password", "passw0rd"})


@cache
def hasher() -> PasswordHasher:
    """The one Argon2id hasher, with explicit parameters."""
    return PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB,
                          parallelism=ARGON2_PARALLELISM, hash_len=32, salt_len=16, type=Type.ID)


def normalize(password: str) -> str:
    """NFKC form: the same password typed on two keyboards hashes the same."""
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    """Argon2id hash of the normalised password (admitted: hash_admission)."""
    return hash_admission.run(hasher().hash, normalize(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no hash, spend the same time and say no."""
    if not password_hash:
        _dummy_verify(password)
        return False
    try:
        return hash_admission.run(hasher().verify, password_hash, normalize(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with other parameters than today's."""
    try:
        return hasher().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def _dummy_hash() -> str:
    return hasher().hash("groundwork-dummy-password-for-timing")


def _dummy_verify(password: str) -> None:
    """Cost one real verification, so unknown accounts answer in the same time."""
    with contextlib.suppress(VerificationError):
        hash_admission.run(hasher().verify, _dummy_hash(), normalize(password))


@cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # loaded on first use, not at import

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """Why ``password`` is not acceptable (a stable code), or None."""
    value = normalize(password)
    if len(value) < MIN_LENGTH:
        return "password_too_short"
    if len(value) > MAX_LENGTH:
        return "password_too_long"
    lowered = value.casefold()
    if lowered in _common_passwords() or lowered in _CONTEXT_WORDS:
        return "password_too_common"
    if len(set(lowered)) == 1:
        return "password_too_common"
    if email and lowered in {email.casefold(), email.split("@", 1)[0].casefold()}:
        return "password_matches_email"
    return None


_MESSAGES = {
    "password_too_short": f"Use at least {MIN_LENGTH} characters.",
    "password_too_long": f"Use at most {MAX_LENGTH} characters.",
    "password_too_common": "This password is too common or has appeared in breaches; choose another.",
    "password_matches_email": "Do not use your email address as your password.",
}


def check_password_policy(password: str, *, email: str | None = None) -> None:
    """Raise ValidationFailed (with a stable code) when ``password`` breaks the policy."""
    problem = password_problem(password, email=email)
    if problem:
        raise ValidationFailed(_MESSAGES[problem], code=problem,
                               details={"fields": {"password": [_MESSAGES[problem]]}})
