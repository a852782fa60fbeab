"""Accounts: who may register with what, and checking credentials at sign-in.

Password rules follow NIST SP 800-63B / OWASP ASVS rather than composition rules: length (8 to
128), not a known common password, not built from the user's own email or username. Every failure
of a sign-in reads the same, so the answer never tells whether an account exists.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from tortoise.exceptions import IntegrityError

from app.errors import Conflict, Unauthenticated, UserInactive, ValidationFailed
from app.models import Role, User
from app.passwords import hash_password, needs_rehash, normalise_password, verify_password
from app.ratelimit import Throttle

PASSWORD_MIN, PASSWORD_MAX = 8, 128
USERNAME_MIN, USERNAME_MAX = 3, 64
EMAIL_MAX = 254
#: Identifiers shorter than this are not searched for inside a password ("a@x.io" would forbid
#: every password with an "a" in it); they are still refused as the whole password.
IDENTITY_MIN = 3

_EMAIL = re.compile(
    r"^(?=.{1,64}@)[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)
_USERNAME = re.compile(r"^[A-Za-z0-9._-]+$")
#: Look-alike characters people swap into a common word ("p@ssw0rd"), read back as letters.
_LOOKALIKES = str.maketrans("@4310$5!7", "aaeiossit")
_TAIL = string.digits + string.punctuation

CONFLICT_DETAIL = "That email or username is already in use."
SIGN_IN_FAILED = "Email or password is incorrect."


def normalise_email(email: str) -> str:
    return email.strip().lower()


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("app").joinpath("data/common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def _common_forms(password: str) -> set[str]:
    """The password as typed, and as the common word it dresses up (``P@ssw0rd2024!``)."""
    lowered = password.lower()
    stem = lowered.rstrip(_TAIL)
    return {lowered, lowered.translate(_LOOKALIKES), stem.translate(_LOOKALIKES) + lowered[len(stem) :]}


def email_problem(email: str) -> str | None:
    if len(email) > EMAIL_MAX or not _EMAIL.match(email):
        return "Enter a valid email address, like name@example.com."
    return None


def username_problem(username: str) -> str | None:
    if not USERNAME_MIN <= len(username) <= USERNAME_MAX:
        return f"Username must be {USERNAME_MIN} to {USERNAME_MAX} characters long."
    if not _USERNAME.match(username):
        return "Username may contain only letters, digits, dots, hyphens and underscores."
    return None


def password_problem(password: str, email: str = "", username: str = "") -> str | None:
    """Why this password may not be used by this person, or None when it may."""
    password = normalise_password(password)
    if len(password) < PASSWORD_MIN:
        return f"Password must be at least {PASSWORD_MIN} characters long."
    if len(password) > PASSWORD_MAX:
        return f"Password must be at most {PASSWORD_MAX} characters long."
    lowered = password.lower()
    identities = {normalise_email(email), normalise_email(email).partition("@")[0], username.strip().lower()}
    for identity in filter(None, identities):
        if lowered == identity or (len(identity) >= IDENTITY_MIN and identity in lowered):
            return "Password must not contain your email address or username."
    if len(set(lowered)) < 4:
        return "Password is too repetitive; use at least 4 different characters."
    if _common_forms(password) & common_passwords():
        return "This password is one of the most common passwords; choose one that is harder to guess."
    return None


@dataclass(frozen=True)
class NewAccount:
    email: str
    username: str


def validate_new_account(email: str, username: str, password: str) -> NewAccount:
    """The normalised identity, or ``ValidationFailed`` naming every field that is wrong."""
    email, username = normalise_email(email), username.strip()
    errors: list[dict[str, Any]] = []
    for field, problem in (
        ("email", email_problem(email)),
        ("username", username_problem(username)),
        ("password", password_problem(password, email, username)),
    ):
        if problem:
            errors.append({"loc": ["body", field], "msg": problem})
    if errors:
        raise ValidationFailed(errors)
    return NewAccount(email, username)


async def create_user(email: str, username: str, password: str, role: Role = Role.DRIVER) -> User:
    account = validate_new_account(email, username, password)
    # Usernames differing only in case would let one user pass for another, so they clash too.
    # The message never says which of the two is taken.
    if await User.filter(email=account.email).exists() or await User.filter(username__iexact=account.username).exists():
        raise Conflict(CONFLICT_DETAIL)
    password_hash = await hash_password(password)
    try:
        return await User.create(email=account.email, username=account.username, password_hash=password_hash, role=role)
    except IntegrityError:  # lost a race with a simultaneous registration
        raise Conflict(CONFLICT_DETAIL) from None


async def authenticate(limiter: Throttle, email: str, password: str, client: str = "unknown") -> User:
    """The user for these credentials, counting the attempt against brute force first."""
    email = normalise_email(email)
    await limiter.begin_sign_in(email, client)
    # An address longer than the column can belong to no account (and the ORM refuses to look it up).
    user = await User.get_or_none(email=email) if len(email) <= EMAIL_MAX else None
    if user is None:
        await hash_password(password)  # spend the same time as a real check
        raise Unauthenticated(SIGN_IN_FAILED)
    if not await verify_password(user.password_hash, password):
        raise Unauthenticated(SIGN_IN_FAILED)
    await limiter.sign_in_succeeded(email, client)
    # Only the right password learns that the account is deactivated.
    if not user.is_active:
        raise UserInactive()
    if needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
        await user.save(update_fields=["password_hash"])
    return user
