"""A booking as an iCalendar file (RFC 5545), for mail attachments and "Add to calendar".

Times are written in the station's own zone (``TZID``, with its ``VTIMEZONE``), so a calendar
shows the slot as the station's clock has it and converts it correctly wherever the driver is.
The ``UID`` is the booking's and never changes, and ``SEQUENCE`` counts what happened to the
booking since it was paid (moves, the cancellation), so a calendar that got the booking updates it
when it moves and removes it (``METHOD:CANCEL``) when it is cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from app.notifications import Slot

PRODID = "-//Chargeslot//Bookings//EN"
REQUEST, CANCEL, PUBLISH = "REQUEST", "CANCEL", "PUBLISH"


@dataclass(frozen=True)
class CalendarEntry:
    slot: Slot
    #: How many changes (moves, the cancellation) the booking has had: the event's SEQUENCE.
    sequence: int
    cancelled: bool
    #: Where the booking is shown (its page on the site), or None.
    url: str | None
    location: str = ""


def uid(booking_id: int, host: str) -> str:
    return f"booking-{booking_id}@{host}"


def booking_ics(
    entry: CalendarEntry,
    *,
    method: str,
    stamp: datetime,
    host: str,
    organizer: str | None = None,
    attendee: str | None = None,
) -> bytes:
    """``organizer`` and ``attendee`` (addresses) are what an invitation (``REQUEST``, ``CANCEL``)
    needs for a mail client to file it as an update of the same event."""
    slot = entry.slot
    zone = ZoneInfo(slot.timezone)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", uid(slot.booking_id, host))
    event.add("sequence", entry.sequence)
    event.add("dtstamp", stamp)
    event.add("dtstart", slot.start.astimezone(zone))
    event.add("dtend", slot.end.astimezone(zone))
    event.add("summary", f"Charging at {slot.station_name} (charger {slot.charger_number})")
    if entry.location:
        event.add("location", entry.location)
    event.add("description", f"Booking {slot.booking_id}: charger {slot.charger_number}, {slot.when}.")
    event.add("status", "CANCELLED" if entry.cancelled else "CONFIRMED")
    if entry.url:
        event.add("url", entry.url)
    if organizer:
        event.add("organizer", f"mailto:{organizer}", parameters={"CN": "Chargeslot"})
    if attendee:
        event.add("attendee", f"mailto:{attendee}", parameters={"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "ACCEPTED"})
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())
