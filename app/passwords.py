"""Password hashing with argon2id, off the event loop (one hash costs tens of milliseconds).

Passwords are NFKC-normalised before hashing and checking, so the same password typed on two
keyboards (composed or decomposed accents, full-width digits) is the same password.
"""

from __future__ import annotations

import asyncio
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def normalise_password(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, normalise_password(password))


async def verify_password(password_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, normalise_password(password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
