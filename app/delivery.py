"""Delivering the notifications outbox: each notification once per channel (DESIGN §13).

A delivery pass claims undelivered rows, sends them and marks them sent. On PostgreSQL the claim
is ``FOR UPDATE SKIP LOCKED`` inside the pass's transaction, so several workers running passes at
once each take different rows and none is sent twice; a worker that dies mid-pass holds no lock
any more, and its rows are sent by the next pass (every worker runs one as it starts). SQLite is
the embedded default's single process, where one pass at a time (a lock) does the same.

Passes are jobs (``app.job_queue``): enqueued right after a change commits, so a notification
reaches the driver's open pages within milliseconds, and at worker start as the catch-up. Nothing
scans the outbox on a timer.

Live: published on the driver's own channel (``app.events.publish_to_driver``) as
``{"type": "notification", "seq", "unread_count", ...fields}``; ``seq`` counts per driver, and
``unread_count`` is the driver's count once this notification has arrived.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from tortoise.transactions import in_transaction

from app import history
from app.bus import Bus
from app.db import fetch, is_postgres
from app.events import driver_channel, publish_to_driver
from app.ics import CANCEL, REQUEST, CalendarEntry, booking_ics
from app.job_queue import DELIVER, JobQueue
from app.mail import Letter, Mailer
from app.models import Booking, BookingStatus, Notification, NotificationKind, Station, User
from app.notifications import FIELDS, as_fields, slot_of

log = logging.getLogger(__name__)

#: Rows one live pass claims per transaction.
BATCH = 200
_local_pass = asyncio.Lock()

_CLAIM_LIVE = f"""
SELECT {", ".join(FIELDS)}, user_id FROM notifications
WHERE live_sent_at IS NULL ORDER BY id LIMIT {BATCH}"""


async def deliver_pending(now: datetime, *, bus: Bus, mail: MailContext | None = None) -> int:
    """Send every notification not yet sent live, then the mail that is due (with ``mail``);
    returns how many were sent live by this pass."""
    sent = 0
    while True:
        batch = await _live_batch(now, bus)
        sent += batch
        if batch < BATCH:
            break
    if mail is not None:
        await deliver_mail(now, mail)
    return sent


async def _live_batch(now: datetime, bus: Bus) -> int:
    if not is_postgres():
        async with _local_pass:
            rows = await fetch(_CLAIM_LIVE)
            await _publish(rows, bus)
            await _mark_live(rows, now)
            return len(rows)
    async with in_transaction() as connection:
        rows = await fetch(_CLAIM_LIVE + " FOR UPDATE SKIP LOCKED", connection=connection)
        await _publish(rows, bus)
        await _mark_live(rows, now, connection)
        return len(rows)


async def _mark_live(rows: list[dict[str, Any]], now: datetime, connection: Any = None) -> None:
    if rows:
        ids = [row["id"] for row in rows]
        marks = ", ".join(f"${n + 2}" for n in range(len(ids)))
        await fetch(
            f"UPDATE notifications SET live_sent_at = $1 WHERE id IN ({marks})", now, *ids, connection=connection
        )


async def _publish(rows: list[dict[str, Any]], bus: Bus) -> None:
    """Publish in id order, each with the driver's unread count as of its arrival."""
    if not rows:
        return
    users = sorted({row["user_id"] for row in rows})
    marks = ", ".join(f"${n + 1}" for n in range(len(users)))
    unread = {
        row["user_id"]: row["unread"]
        for row in await fetch(
            f"SELECT user_id, count(*) AS unread FROM notifications WHERE read_at IS NULL AND user_id IN ({marks}) "
            "GROUP BY user_id",
            *users,
        )
    }
    # Unread rows of this batch not yet published, per driver: subtracted so counts rise one by one.
    ahead = Counter(row["user_id"] for row in rows if row["read_at"] is None)
    for row in rows:
        user_id = row["user_id"]
        if row["read_at"] is None:
            ahead[user_id] -= 1
        seq = await bus.next_seq(driver_channel(user_id))
        message = {"type": "notification", "seq": seq, "unread_count": unread.get(user_id, 0) - ahead[user_id]}
        await publish_to_driver(bus, user_id, {**message, **as_fields(row)})


# -- mail ------------------------------------------------------------------------------------------

#: How long a claimed mail stays taken by the pass that claimed it (a pass that died lets go then).
MAIL_LEASE = timedelta(minutes=5)
MAIL_BATCH = 50
FIRST_RETRY, LAST_RETRY = timedelta(seconds=30), timedelta(hours=1)
#: Mail not sent within this long is not sent at all: a day-old reminder helps nobody.
MAIL_GIVES_UP = timedelta(days=1)

_CLAIM_MAIL = """
UPDATE notifications SET mail_next_at = $1, mail_attempts = mail_attempts + 1
WHERE id IN (SELECT id FROM notifications
             WHERE mail_sent_at IS NULL AND mail_next_at <= $2 AND created_at > $3
             ORDER BY id LIMIT {batch}{lock})
RETURNING id, user_id, kind, booking_id, title, body, mail_attempts"""


@dataclass(frozen=True)
class MailContext:
    """What the mail pass needs besides the database."""

    mailer: Mailer
    jobs: JobQueue | None = None
    #: The site's address for links and calendar ids (``PUBLIC_URL``); None: no links.
    public_url: str | None = None


def retry_delay(attempts: int) -> timedelta:
    """30 s after the first failure, doubling up to an hour."""
    return min(FIRST_RETRY * 2 ** max(0, attempts - 1), LAST_RETRY)


async def deliver_mail(now: datetime, context: MailContext) -> int:
    """Send due notification mail; returns how many went. What fails is tried again later."""
    sent = 0
    while True:
        if is_postgres():
            claimed = await fetch(_CLAIM_MAIL.format(batch=MAIL_BATCH, lock=" FOR UPDATE SKIP LOCKED"), *_window(now))
        else:
            async with _local_pass:
                claimed = await fetch(_CLAIM_MAIL.format(batch=MAIL_BATCH, lock=""), *_window(now))
        if not claimed:
            return sent
        sent += await _send(claimed, now, context)
        if len(claimed) < MAIL_BATCH:
            return sent


def _window(now: datetime) -> tuple[datetime, datetime, datetime]:
    return now + MAIL_LEASE, now, now - MAIL_GIVES_UP


async def _send(claimed: list[dict[str, Any]], now: datetime, context: MailContext) -> int:
    letters = await _letters(claimed, now, context)
    try:
        results = await context.mailer.send([letter for _, letter in letters])
    except Exception as exc:
        log.warning("mail server unavailable (%s); %d mails will be tried again", exc, len(letters))
        results = [False] * len(letters)
    went = [row_id for (row_id, _), ok in zip(letters, results, strict=True) if ok]
    if went:
        marks = ", ".join(f"${n + 2}" for n in range(len(went)))
        await fetch(f"UPDATE notifications SET mail_sent_at = $1 WHERE id IN ({marks})", now, *went)
    failed = [row for row in claimed if row["id"] not in set(went)]
    for row in failed:
        at = now + retry_delay(row["mail_attempts"])
        await fetch("UPDATE notifications SET mail_next_at = $1 WHERE id = $2", at, row["id"])
        if context.jobs is not None:
            await context.jobs.enqueue(DELIVER, job_id=f"mail-retry:{row['id']}:{row['mail_attempts']}", at=at)
    return len(went)


async def _letters(claimed: list[dict[str, Any]], now: datetime, context: MailContext) -> list[tuple[int, Letter]]:
    user_ids = {row["user_id"] for row in claimed}
    emails = dict(await User.filter(id__in=list(user_ids)).values_list("id", "email"))
    booking_ids = [row["booking_id"] for row in claimed if row["booking_id"] is not None]
    found = {b.id: b for b in await Booking.filter(id__in=booking_ids).select_related("station", "charger")}
    changes = await changes_of(booking_ids)
    host = urlsplit(context.public_url).hostname if context.public_url else None
    booking_url = f"{context.public_url}/bookings" if context.public_url else None
    letters = []
    for row in claimed:
        booking = found.get(row["booking_id"])
        letter = Letter(to=emails[row["user_id"]], title=row["title"], body=row["body"], booking_url=booking_url)
        if booking is not None:
            cancelled = booking.status == BookingStatus.CANCELLED
            method = CANCEL if row["kind"] == NotificationKind.BOOKING_CANCELLED else REQUEST
            entry = calendar_entry(booking, changes.get(booking.id, 0), booking_url)
            ics = booking_ics(
                replace(entry, cancelled=cancelled),
                method=method,
                stamp=now,
                host=host or "chargeslot",
                organizer=context.mailer.sender_address,
                attendee=letter.to,
            )
            letter = replace(letter, ics=ics, ics_method=method, ics_name=f"booking-{booking.id}.ics")
        letters.append((row["id"], letter))
    return letters


def calendar_entry(booking: Booking, changes: int, url: str | None) -> CalendarEntry:
    station: Station = booking.station
    return CalendarEntry(
        slot_of(booking),
        sequence=changes,
        cancelled=booking.status == BookingStatus.CANCELLED,
        url=url,
        location=f"{station.location}, {station.city}",
    )


async def changes_of(booking_ids: list[int]) -> dict[int, int]:
    """How many times each booking was moved or cancelled: its calendar entry's SEQUENCE."""
    if not booking_ids:
        return {}
    marks = ", ".join(f"${n + 1}" for n in range(len(booking_ids)))
    rows = await fetch(
        f"SELECT booking_id, count(*) AS changes FROM booking_events WHERE booking_id IN ({marks}) "
        f"AND event IN ('{history.MOVED}', '{history.CANCELLED}') GROUP BY booking_id",
        *booking_ids,
    )
    return {row["booking_id"]: row["changes"] for row in rows}


async def backlog(now: datetime, mail_enabled: bool) -> int:
    """Notifications not yet delivered on every channel they go by: not yet published to the
    driver's pages, or mail still due and not yet given up on (``/metrics``: the outbox backlog)."""
    live = await Notification.filter(live_sent_at__isnull=True).count()
    if not mail_enabled:
        return live
    mail = Notification.filter(
        mail_sent_at__isnull=True, mail_next_at__isnull=False, created_at__gt=now - MAIL_GIVES_UP
    )
    return live + await mail.count()
