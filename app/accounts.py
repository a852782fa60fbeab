"""Accounts: creating users with normalised, unique identities."""

from __future__ import annotations

from app.errors import Conflict, Unauthenticated, UserInactive, ValidationFailed
from app.models import Role, User
from app.passwords import hash_password, needs_rehash, verify_password


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def create_user(email: str, username: str, password: str, role: Role = Role.DRIVER) -> User:
    email = normalise_email(email)
    username = username.strip()
    if "@" not in email or len(email) > 254:
        raise ValidationFailed([{"loc": ["body", "email"], "msg": "Enter a valid email address."}])
    if not 3 <= len(username) <= 64:
        raise ValidationFailed([{"loc": ["body", "username"], "msg": "Username must be 3 to 64 characters."}])
    if await User.filter(email=email).exists():
        raise Conflict("An account with this email or username already exists.")
    if await User.filter(username=username).exists():
        raise Conflict("An account with this email or username already exists.")
    return await User.create(email=email, username=username, password_hash=await hash_password(password), role=role)


async def authenticate(email: str, password: str) -> User:
    """The user for these credentials. Every failure reads the same, so the answer never tells
    whether an account exists."""
    user = await User.get_or_none(email=normalise_email(email))
    if user is None:
        await hash_password(password)  # spend the same time as a real check
        raise Unauthenticated("Email or password is incorrect.")
    if not await verify_password(user.password_hash, password):
        raise Unauthenticated("Email or password is incorrect.")
    if not user.is_active:
        raise UserInactive()
    if needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
        await user.save(update_fields=["password_hash"])
    return user
