"""Users as operators and admins see them: finding accounts, and changing a role or locking one out.

Deactivating an account takes effect at once, not at the user's next sign-in: every session of the
user is deleted (their next request is a 401) and their unpaid holds expire, freeing the chargers
they held, in the same transaction as the change. An admin cannot demote or deactivate their own
account, so the last admin cannot lock everyone out by mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Q

from app.bus import Bus
from app.db import write_transaction
from app.errors import Forbidden, NotFound
from app.events import publish_availability, quietly
from app.models import Booking, BookingStatus, Role, Session, User


@dataclass(frozen=True)
class UserFilter:
    """What the users list narrows by; None means "any"."""

    text: str | None = None
    role: Role | None = None
    is_active: bool | None = None


async def find_users(where: UserFilter, *, limit: int, offset: int) -> tuple[int, list[User]]:
    """(how many match, one page of them by id)."""
    query = User.all()
    if where.text:
        query = query.filter(Q(email__icontains=where.text) | Q(username__icontains=where.text))
    if where.role is not None:
        query = query.filter(role=where.role)
    if where.is_active is not None:
        query = query.filter(is_active=where.is_active)
    total = await query.count()
    return total, await query.order_by("id").offset(offset).limit(limit)


async def change_user(
    actor: User,
    user_id: int,
    *,
    is_active: bool | None = None,
    role: Role | None = None,
    now: datetime,
    bus: Bus,
) -> User:
    """Apply an admin's change to an account; returns the account as it now is."""
    if actor.id == user_id and (is_active is False or (role is not None and role != actor.role)):
        raise Forbidden("You cannot deactivate or demote your own account; another admin can.")
    async with write_transaction():
        user = await User.get_or_none(id=user_id)
        if user is None:
            raise NotFound("User not found.")
        changed: list[str] = []
        if role is not None and role != user.role:
            user.role = role
            changed.append("role")
        freed: list[int] = []
        if is_active is not None and is_active != user.is_active:
            user.is_active = is_active
            changed.append("is_active")
            if not is_active:
                freed = await _lock_out(user, now)
        if changed:
            await user.save(update_fields=changed)
    for station_id in freed:
        await quietly(publish_availability(bus, station_id, now))
    return user


async def _lock_out(user: User, now: datetime) -> list[int]:
    """End every session of ``user`` and expire their unpaid holds; the stations whose chargers
    this frees."""
    await Session.filter(user_id=user.id).delete()
    holds = Booking.filter(user_id=user.id, status=BookingStatus.CONFIRMED)
    stations: list[int] = (
        await holds.filter(hold_expires_at__gt=now)
        .distinct()
        .values_list(  # type: ignore[assignment]
            "station_id", flat=True
        )
    )
    await holds.update(status=BookingStatus.EXPIRED, updated_at=now)
    return sorted(set(stations))
