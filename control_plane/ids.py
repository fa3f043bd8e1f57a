"""Identifiers and secrets: time-ordered ids, random secrets and their hashes."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid


def new_id() -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so ids sort by creation and paginate well."""
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def new_secret(prefix: str, nbytes: int = 24) -> str:
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def new_public_id(nbytes: int = 12) -> str:
    # Lower-case letters and digits only: safe in URLs, paths and file names.
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(nbytes * 2))


def hash_secret(secret: str) -> str:
    """Secrets we issue carry >= 128 random bits, so a fast unsalted hash is enough to make
    a stolen database useless, and it lets us look a secret up by its hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_match(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
