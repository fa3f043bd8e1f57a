"""Password hashing with Argon2id. Hashing is slow on purpose, so callers run it on a
thread (see AuthService)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

#: Verified against when the user does not exist, so timing does not reveal which emails
#: have accounts.
_DUMMY_HASH = _hasher.hash("tidecast-dummy-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
