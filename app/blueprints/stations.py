"""Public station endpoints (DESIGN §5): the list, one station, its live status, free chargers.

All four answer from this process's ``StationDirectory`` with the server clock at request time, so
the list and the status need no database round trip once the directory is warm. The list and the
status are the hot paths (home page; every polling client): they return JSON encoded directly from
the directory's shared dicts, documented with ``document_response`` instead of re-validating each
response through pydantic.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from pydantic import BaseModel, Field, ValidationError, field_validator
from quart import Blueprint, Response, request
from quart_schema import document_querystring, document_response, validate_querystring, validate_response
from quart_schema.validation import QuerystringValidationError

from app.auth import authorize
from app.availability import busy_charger_ids
from app.bookings import BookingPolicy, amount_for, check_slot
from app.clock import station_instant
from app.directory import StationDirectory
from app.errors import NotFound, ValidationFailed
from app.models import ChargerStatus, Role
from app.models import StationStatus as StationState
from app.money import format_money
from app.state import state
from app.station_search import DEFAULT_RADIUS_KM, MAX_RADIUS_KM, StationFilter, find_stations
from app.station_views import StationView, encode_json
from app.wire import Problem, parse_date_time

blueprint = Blueprint("stations", __name__, url_prefix="/api/stations")


def json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, content_type="application/json")


# -- models (what /openapi.json promises) ---------------------------------------------------------


class StationsQuery(BaseModel):
    open_now: bool = Field(False, description="Only stations open now by the server clock.")
    city: str | None = Field(None, max_length=100, description="Exact city, any case.")
    q: str | None = Field(None, max_length=200, description="Text in the name or address.")
    charger_type: str | None = Field(None, max_length=32, description="Has a charger of this type, e.g. CCS2.")
    near: str | None = Field(None, description="`lat,lon`: nearest first, adds `distance_km`.")
    radius_km: float = Field(
        DEFAULT_RADIUS_KM,
        gt=0,
        le=MAX_RADIUS_KM,
        description=f"With `near`: only stations this many km away or closer (at most {MAX_RADIUS_KM:g}).",
    )
    include_inactive: bool = Field(
        False,
        description="Also list `INACTIVE` stations; operators only (401 signed out, 403 for a driver).",
    )
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)

    @field_validator("city", "q", "charger_type", "near", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: object) -> object:
        """An empty search box sends ``q=``: that means no filter, not "match nothing"."""
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    @field_validator("near")
    @classmethod
    def _point(cls, value: str | None) -> str | None:
        if value is not None:
            parse_point(value)
        return value

    def where(self) -> StationFilter:
        return StationFilter(
            open_now=self.open_now,
            city=self.city,
            text=self.q,
            charger_type=self.charger_type,
            near=parse_point(self.near) if self.near else None,
            radius_km=self.radius_km,
        )


def read_stations_query(query_string: bytes) -> StationsQuery:
    """The list's query from the raw URL, read the way ``validate_querystring`` reads a query (a
    repeated parameter is a list, ``name[]`` always one) so that it means the same as anywhere else
    in the API; QuerystringValidationError, the 422 of every query, when it is not valid.

    The route and the fast lane (``app.fast_lane``) both read it here, so they cannot disagree.
    """
    try:
        pairs = parse_qsl(query_string.decode(), keep_blank_values=True, errors="werkzeug.url_quote")
    except UnicodeDecodeError as error:
        raise QuerystringValidationError(ValueError("The query string is not UTF-8.")) from error
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    arguments = {
        name.removesuffix("[]"): found if name.endswith("[]") or len(found) > 1 else found[0]
        for name, found in values.items()
    }
    try:
        return StationsQuery.model_validate(arguments)
    except ValidationError as error:
        raise QuerystringValidationError(error) from error


async def list_page(directory: StationDirectory, now: datetime, query: StationsQuery) -> bytes:
    """The list's body for the route and the fast lane alike: who may see inactive stations is
    checked before either calls this."""
    return station_page(await directory.listed(query.include_inactive), now, query)


def station_page(views: Sequence[StationView], now: datetime, query: StationsQuery) -> bytes:
    """A page of the list as JSON. Items are fragments each view keeps until its answer can change,
    so a page is mostly a join."""
    total, page = find_stations(views, now, query.where(), query.limit, query.offset)
    items = b",".join(
        view.summary_json(now) if km is None else encode_json({**view.summary(now), "distance_km": round(km, 3)})
        for view, km in page
    )
    tail = f'],"total":{total},"limit":{query.limit},"offset":{query.offset}}}'
    return b'{"items":[' + items + tail.encode()


def parse_point(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        lat, lon = (float(part) for part in parts)
    except ValueError:
        raise ValueError("must be two numbers: latitude,longitude") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError("latitude must be within -90..90 and longitude within -180..180")
    return lat, lon


class TodayException(BaseModel):
    kind: str = Field(description="closing or opening")
    begin: str = Field(description="Station-local HH:MM:SS.")
    end: str = Field(description="Station-local HH:MM:SS; 23:59:59 when it lasts past today.")


class StationItem(BaseModel):
    id: int
    name: str
    location: str
    city: str
    latitude: float
    longitude: float
    timezone: str = Field(description="IANA zone the hours are kept in.")
    price_per_hour: str = Field(description='Major units as a decimal string, e.g. "150.00".')
    currency: str
    status: str = Field(description="ACTIVE, INACTIVE or MAINTENANCE.")
    is_open: bool = Field(description="Open now by the server clock, in the station's zone.")
    open_time: str | None = Field(
        description="Today's (station-local) regular opening as HH:MM:SS; null when the regular hours close all day."
    )
    close_time: str | None
    exceptions_today: list[TodayException] = Field(
        description="Exceptional closings and openings that change today's hours, station-local, clipped to today."
    )
    next_change_at: str | None = Field(description="Next open/close instant, ISO 8601 with offset; null if never.")
    total_chargers: int
    available_chargers: int
    distance_km: float | None = Field(None, description="Only with `near`.")


class StationPage(BaseModel):
    items: list[StationItem]
    total: int
    limit: int
    offset: int


class ChargerNow(BaseModel):
    id: int
    charger_number: int
    charger_type: str
    power_kw: float
    status: str
    available_now: bool


class RegularPeriodOut(BaseModel):
    weekday: int
    period_begin: str
    period_end: str


class ExceptionalPeriodOut(BaseModel):
    period_begin: str
    period_end: str


class HoursOut(BaseModel):
    twentyfourseven: bool
    regular_hours: list[RegularPeriodOut]
    exceptional_openings: list[ExceptionalPeriodOut]
    exceptional_closings: list[ExceptionalPeriodOut]


class ExceptionOut(BaseModel):
    id: int
    kind: str = Field(description='"opening" or "closing".')
    period_begin: str
    period_end: str


class StationDetail(StationItem):
    chargers: list[ChargerNow]
    hours: HoursOut
    exceptions: list[ExceptionOut] = Field(description="The exceptional periods with ids, for operators.")
    current_server_time: str


class StationStatus(BaseModel):
    station_id: int
    is_open: bool
    open_time: str | None
    close_time: str | None
    next_change_at: str | None
    exceptions_today: list[TodayException]
    current_server_time: str
    available_chargers: int
    total_chargers: int
    station_status: str


class SlotQuery(BaseModel):
    slot_time: str = Field(description="ISO 8601; without an offset it is station-local time.")
    duration_minutes: int = Field(60, ge=15, le=240, multiple_of=15)


class ChargerForSlot(BaseModel):
    id: int
    charger_number: int
    charger_type: str
    power_kw: float
    status: str
    available: bool


class SlotAvailability(BaseModel):
    available: bool
    available_count: int
    booked_count: int
    total_chargers: int
    slot_time: str
    slot_end: str
    duration_minutes: int
    within_opening_hours: bool
    amount_due: str = Field(description="What booking this slot would cost (decimal string in major units).")
    currency: str
    reason: str | None = Field(
        None,
        description="Why booking would refuse this slot whatever the chargers (every charger is then unavailable).",
    )
    chargers: list[ChargerForSlot]


# -- handlers ---------------------------------------------------------------------------------


async def station_or_404(station_id: int) -> StationView:
    view = await state().directory.get(station_id)
    if view is None:
        raise NotFound("Station not found.")
    return view


@blueprint.get("")
@document_querystring(StationsQuery)
@document_response(StationPage)
@document_response(Problem, 401)
@document_response(Problem, 403)
async def list_stations() -> Response:
    """Stations with whether each is open now; filter, search, sort by distance, paginate.
    `INACTIVE` stations are not listed, except to operators asking with `include_inactive=true`."""
    query = read_stations_query(request.query_string)
    if query.include_inactive:
        await authorize(Role.OPERATOR, Role.ADMIN)
    return json_response(await list_page(state().directory, state().clock.now(), query))


@blueprint.get("/<int:station_id>")
@validate_response(StationDetail)
async def get_station(station_id: int) -> StationDetail:
    """One station with its chargers, full opening hours and the server's current time."""
    return station_detail(await station_or_404(station_id), state().clock.now())


def station_detail(view: StationView, now: datetime) -> StationDetail:
    return StationDetail.model_validate(
        {
            **view.summary(now),
            "chargers": view.chargers_now(now),
            "hours": view.hours.to_dict(),
            "exceptions": [exception.to_dict() for exception in view.exceptions],
            "current_server_time": now.isoformat(),
        }
    )


@blueprint.get("/<int:station_id>/status")
@document_response(StationStatus)
async def get_status(station_id: int) -> Response:
    """Open now or not, today's hours, the next change and free chargers; cheap enough to poll."""
    view = await station_or_404(station_id)
    return json_response(encode_json(view.status_at(state().clock.now())))


@blueprint.get("/<int:station_id>/chargers/available")
@validate_querystring(SlotQuery)
@validate_response(SlotAvailability)
async def chargers_for_slot(station_id: int, query_args: SlotQuery) -> SlotAvailability:
    """Which chargers are free for a whole slot. A hint, but an honest one: a slot that booking
    would refuse (the station closed now or not taking bookings, the slot in the past, beyond the
    booking horizon or outside opening hours) is answered with `available: false` and the
    `reason` in words, decided by the same checks booking makes (booking checks again)."""
    view = await station_or_404(station_id)
    services = state()
    now = services.clock.now()
    start = slot_start(query_args.slot_time, view)
    end = start + timedelta(minutes=query_args.duration_minutes)
    reason = refusal(view, start, query_args.duration_minutes, now, services.policy)
    busy = await busy_charger_ids(station_id, start, end, now)
    chargers = [
        ChargerForSlot(
            id=c.id,
            charger_number=c.charger_number,
            charger_type=c.charger_type,
            power_kw=c.power_kw,
            status=c.status,
            available=reason is None and c.status == ChargerStatus.AVAILABLE and c.id not in busy,
        )
        for c in view.chargers
    ]
    available = sum(c.available for c in chargers)
    return SlotAvailability(
        available=available > 0,
        available_count=available,
        booked_count=sum(c.id in busy for c in view.chargers),
        total_chargers=len(chargers),
        slot_time=start.astimezone(view.zone).isoformat(),
        slot_end=end.astimezone(view.zone).isoformat(),
        duration_minutes=query_args.duration_minutes,
        within_opening_hours=view.schedule.covers(start, end),
        amount_due=format_money(amount_for(view.price_per_hour, query_args.duration_minutes)),
        currency=view.currency,
        reason=reason,
        chargers=chargers,
    )


def refusal(view: StationView, start: datetime, duration: int, now: datetime, policy: BookingPolicy) -> str | None:
    """Why booking would refuse this slot whatever the chargers, in booking's own order; None if
    it would not."""
    if view.status != StationState.ACTIVE:
        return "The station is not taking bookings."
    if not view.is_open(now):
        return "The station is closed right now; bookings open when it does."
    try:
        check_slot(view.schedule, start, duration, now, policy)
    except ValidationFailed as refused:
        return " ".join(error["msg"] for error in refused.extra["errors"])
    return None


def slot_start(text: str, view: StationView) -> datetime:
    """An ISO 8601 instant; a time without an offset is read as the station's wall clock."""
    try:
        value = parse_date_time(text)
    except ValueError as error:
        raise ValidationFailed([{"loc": ["query", "slot_time"], "msg": str(error)}]) from None
    instant = station_instant(value, view.timezone)
    if instant is None:
        msg = f"does not exist in {view.timezone}: the clocks skip it"
        raise ValidationFailed([{"loc": ["query", "slot_time"], "msg": msg}])
    return instant
