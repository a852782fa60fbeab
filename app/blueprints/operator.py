"""Operator endpoints (DESIGN §5): stations, their hours, exceptional periods and chargers.

The domain (``app.stations``) commits each change and publishes it; the publish reaches this
process's directory before it returns, so the response below is built from the new rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from quart import Blueprint
from quart_schema import (
    document_response,
    security_scheme_blueprint,
    validate_querystring,
    validate_request,
    validate_response,
)

from app import charge_points, charger_duties, stations
from app.auth import authorize
from app.blueprints.stations import ChargerNow, ExceptionOut, StationDetail, station_detail, station_or_404
from app.errors import NotFound, ValidationFailed, describe
from app.events import publish_availability, quietly
from app.hours import HoursSpec, HoursValidationError, validate_timezone
from app.hours_input import parse_hours
from app.models import ChargerStatus, Role, StationStatus
from app.money import format_money, parse_money
from app.rebooking import Affected
from app.state import state
from app.wire import NoContent, PlainStr, Problem, parse_date_time, signed_in

blueprint = Blueprint("operator", __name__, url_prefix="/api/stations")

OPERATORS = (Role.OPERATOR, Role.ADMIN)
security_scheme_blueprint(blueprint, signed_in(*OPERATORS))


#: Minor units. Four hours at this price still fit the integer ``amount_due`` column.
MAX_PRICE_PER_HOUR = 1_000_000_00


def _price_text(value: object) -> object:
    """A JSON whole number is taken as the same price written as text; nothing else but text is. A
    lax integer would read ``true`` as a price of 1.00."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError('must be a decimal string in major units, such as "250.00"')
    return value


def _money(text: str) -> str:
    if parse_money(text) > MAX_PRICE_PER_HOUR:
        raise ValueError(f"must be at most {format_money(MAX_PRICE_PER_HOUR)}")
    return text


def _timezone(value: str) -> str:
    try:
        return validate_timezone(value)
    except HoursValidationError as error:
        raise ValueError(error.errors[0]["msg"]) from None


Text = Annotated[PlainStr, Field(min_length=1)]
Money = Annotated[
    str,
    BeforeValidator(_price_text, json_schema_input_type=str | int),
    AfterValidator(_money),
    Field(description='Major units, e.g. "150.00".'),
]
Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$", description="ISO 4217 code."), AfterValidator(str.upper)]
Timezone = Annotated[str, AfterValidator(_timezone), Field(description="IANA zone, e.g. Asia/Kolkata.")]
# Strict: a lax float reads JSON ``true`` as 1.0 and the text "18.9" as a number.
Latitude = Annotated[float, Field(ge=-90, le=90, strict=True)]
Longitude = Annotated[float, Field(ge=-180, le=180, strict=True)]
PowerKw = Annotated[float, Field(gt=0, le=1000, strict=True)]
#: A UTC instant sent as ISO 8601 text with its offset (a lax datetime also reads a number as one).
Instant = Annotated[AwareDatetime, BeforeValidator(parse_date_time, json_schema_input_type=str)]
ChargerType = Annotated[
    str, Field(pattern=r"^[A-Za-z0-9_]{2,32}$", description="Connector standard, e.g. CCS2."), AfterValidator(str.upper)
]


class HoursIn(BaseModel):
    """OCPI-like hours, or the ``open_time``/``close_time`` shorthand for the same period every day.

    The fields are checked by ``app.hours_input.parse_hours``, which names every wrong field at once.
    """

    model_config = ConfigDict(extra="allow")
    twentyfourseven: Any = Field(None, description="Open always (except exceptional closings).")
    regular_hours: Any = Field(None, description="[{weekday 1=Mon..7=Sun, period_begin HH:MM, period_end HH:MM}]")
    exceptional_openings: Any = Field(None, description="[{period_begin, period_end}] ISO instants with offset.")
    exceptional_closings: Any = Field(None, description="As exceptional_openings; closings win.")
    open_time: Any = Field(None, description="Shorthand: HH:MM opening, every day.")
    close_time: Any = Field(None, description="Shorthand: HH:MM closing; at or before open_time runs overnight.")


class ChargerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    charger_type: ChargerType
    power_kw: PowerKw


class StationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: Annotated[Text, Field(max_length=200)]
    location: Annotated[Text, Field(max_length=500)]
    city: Annotated[Text, Field(max_length=100)]
    latitude: Latitude
    longitude: Longitude
    timezone: Timezone
    price_per_hour: Money
    currency: Currency
    status: StationStatus = StationStatus.ACTIVE
    hours: HoursIn
    chargers: list[ChargerIn] = Field(default_factory=list, max_length=50)


class StationPatch(BaseModel):
    """Any subset of the station's fields; ``hours`` replaces the hours."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: Annotated[Text, Field(max_length=200)] | None = None
    location: Annotated[Text, Field(max_length=500)] | None = None
    city: Annotated[Text, Field(max_length=100)] | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    timezone: Timezone | None = None
    price_per_hour: Money | None = None
    currency: Currency | None = None
    status: StationStatus | None = None
    hours: HoursIn | None = None


class DryRun(BaseModel):
    dry_run: bool = Field(False, description="Only say what the change would do to bookings; change nothing.")


class AffectedBookings(BaseModel):
    """Bookings the change made impossible (DESIGN §13): moved to another charger of the same type,
    or cancelled (a paid one refunded in full)."""

    moved: int
    cancelled: int
    booking_ids: list[int]


class ChangeOutcome(BaseModel):
    dry_run: bool = Field(description="True: nothing was changed; this is what the change would do.")
    affected_bookings: AffectedBookings


class StationChanged(StationDetail, ChangeOutcome):
    """The station as it now is (as it still is, in a dry run)."""


class ChargerChanged(ChargerNow, ChangeOutcome):
    pass


class ExceptionAdded(ExceptionOut, ChangeOutcome):
    id: int | None = Field(description="Null in a dry run: nothing was stored.")  # type: ignore[assignment]


class ExceptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["closing", "opening"]
    period_begin: Instant
    period_end: Instant

    @field_validator("period_end")
    @classmethod
    def _after_begin(cls, value: datetime, info: ValidationInfo) -> datetime:
        begin = info.data.get("period_begin")
        if begin is not None and value <= begin:
            raise ValueError("must be after period_begin")
        return value


class ChargerStatusIn(BaseModel):
    """A status change, a link to a charge point's connector (DESIGN §14), or both."""

    model_config = ConfigDict(extra="forbid")
    status: ChargerStatus | None = None
    charge_point_id: int | None = Field(None, ge=1, le=2**31 - 1, strict=True)
    connector_id: int | None = Field(None, ge=1, le=2**31 - 1, strict=True)


def _hours(data: HoursIn, loc: tuple[str, ...] = ("body", "hours")) -> HoursSpec:
    try:
        return parse_hours(data.model_dump(exclude_unset=True), loc_prefix=loc)
    except HoursValidationError as error:
        raise ValidationFailed(error.errors, describe(error.errors)) from None


def _columns(data: BaseModel, names: set[str]) -> dict[str, Any]:
    """Request fields as station columns (money in minor units)."""
    columns = {name: getattr(data, name) for name in names}
    if "price_per_hour" in columns:
        columns["price_per_hour"] = parse_money(str(columns["price_per_hour"]))
    return columns


def _change(dry_run: bool = False) -> stations.Change:
    """What the domain needs to carry out, announce and settle the change it commits."""
    services = state()
    return stations.Change(services.clock.now(), services.bus, services.provider, dry_run, services.jobs)


def _outcome(affected: Affected, dry_run: bool) -> dict[str, Any]:
    summary = AffectedBookings(
        moved=len(affected.moved), cancelled=len(affected.cancelled), booking_ids=affected.booking_ids
    )
    return {"dry_run": dry_run, "affected_bookings": summary}


async def _detail(station_id: int) -> StationDetail:
    return station_detail(await station_or_404(station_id), state().clock.now())


async def _changed(station_id: int, affected: Affected, dry_run: bool) -> StationChanged:
    return StationChanged(**(await _detail(station_id)).model_dump(), **_outcome(affected, dry_run))


@blueprint.post("")
@validate_request(StationIn)
@validate_response(StationDetail, 201)
async def create_station(data: StationIn) -> tuple[StationDetail, int]:
    """Create a station with its hours and chargers: all of it or nothing."""
    await authorize(*OPERATORS)
    hours = _hours(data.hours)
    fields = _columns(data, set(StationIn.model_fields) - {"hours", "chargers"})
    chargers = [stations.ChargerSpec(c.charger_type, c.power_kw) for c in data.chargers]
    services = state()
    station = await stations.create_station(
        hours=hours, chargers=chargers, bus=services.bus, now=services.clock.now(), **fields
    )
    return await _detail(station.id), 201


@blueprint.patch("/<int:station_id>")
@validate_querystring(DryRun)
@validate_request(StationPatch)
@validate_response(StationChanged)
async def update_station(station_id: int, data: StationPatch, query_args: DryRun) -> StationChanged:
    """Change any fields, including `status` (INACTIVE, MAINTENANCE) and `hours`. Bookings the
    change makes impossible are moved or cancelled and refunded (`affected_bookings`); with
    `?dry_run=true` nothing changes and the answer says what would happen."""
    await authorize(*OPERATORS)
    sent = data.model_fields_set
    nulls = sorted(name for name in sent if getattr(data, name) is None)
    if nulls:
        errors = [{"loc": ["body", name], "msg": "may not be null"} for name in nulls]
        raise ValidationFailed(errors, describe(errors))
    hours = _hours(data.hours) if data.hours is not None else None
    changes = _columns(data, sent - {"hours"})
    affected = await stations.update_station(station_id, changes, hours, _change(query_args.dry_run))
    return await _changed(station_id, affected, query_args.dry_run)


@blueprint.put("/<int:station_id>/hours")
@validate_querystring(DryRun)
@validate_request(HoursIn)
@validate_response(StationChanged)
async def replace_hours(station_id: int, data: HoursIn, query_args: DryRun) -> StationChanged:
    """Replace the opening hours (OCPI-like or the `{open_time, close_time}` shorthand). Bookings
    outside the new hours are cancelled and refunded (`affected_bookings`; `?dry_run=true` to ask first)."""
    await authorize(*OPERATORS)
    affected = await stations.update_station(station_id, {}, _hours(data, ("body",)), _change(query_args.dry_run))
    return await _changed(station_id, affected, query_args.dry_run)


@blueprint.post("/<int:station_id>/exceptions")
@validate_querystring(DryRun)
@validate_request(ExceptionIn)
@validate_response(ExceptionAdded, 201)
@document_response(ExceptionAdded, 200)
async def add_exception(station_id: int, data: ExceptionIn, query_args: DryRun) -> tuple[ExceptionAdded, int]:
    """Add an exceptional closing (beats everything) or opening for a period of UTC instants.
    Bookings inside a closing are cancelled and refunded (`affected_bookings`); with
    `?dry_run=true` nothing is stored (200, `id` null) and the answer says what would happen."""
    await authorize(*OPERATORS)
    period, affected = await stations.add_exception(
        station_id,
        closing=data.kind == "closing",
        begin=data.period_begin,
        end=data.period_end,
        change=_change(query_args.dry_run),
    )
    out = ExceptionAdded(
        id=None if query_args.dry_run else period.id,
        kind=data.kind,
        period_begin=period.period_begin.isoformat(),
        period_end=period.period_end.isoformat(),
        **_outcome(affected, query_args.dry_run),
    )
    return out, 200 if query_args.dry_run else 201


@blueprint.delete("/<int:station_id>/exceptions/<int:exception_id>")
@validate_querystring(DryRun)
@document_response(NoContent, 204)
@document_response(ChangeOutcome, 200)
async def remove_exception(station_id: int, exception_id: int, query_args: DryRun) -> tuple[str | ChangeOutcome, int]:
    """Remove an exceptional closing or opening (204). Removing an opening cancels the bookings
    that relied on it; ask first with `?dry_run=true` (200 with `affected_bookings`)."""
    await authorize(*OPERATORS)
    affected = await stations.remove_exception(station_id, exception_id, _change(query_args.dry_run))
    if query_args.dry_run:
        return ChangeOutcome(**_outcome(affected, dry_run=True)), 200
    return "", 204


@blueprint.post("/<int:station_id>/chargers")
@validate_request(ChargerIn)
@validate_response(ChargerNow, 201)
async def add_charger(station_id: int, data: ChargerIn) -> tuple[ChargerNow, int]:
    """Add a charger, numbered after the station's highest."""
    await authorize(*OPERATORS)
    spec = stations.ChargerSpec(data.charger_type, data.power_kw)
    services = state()
    charger = await stations.add_charger(station_id, spec, bus=services.bus, now=services.clock.now())
    return await _charger_now(station_id, charger.id), 201


@blueprint.patch("/<int:station_id>/chargers/<int:charger_id>")
@validate_querystring(DryRun)
@validate_request(ChargerStatusIn)
@validate_response(ChargerChanged)
@document_response(Problem, 409)
async def set_charger_status(
    station_id: int, charger_id: int, data: ChargerStatusIn, query_args: DryRun
) -> ChargerChanged:
    """Take a charger out of service or bring it back. Its bookings move to a free charger of the
    same type, else are cancelled and refunded (`affected_bookings`; `?dry_run=true` to ask first).
    `charge_point_id` + `connector_id` link it to a charge point's connector (both null: unlink);
    409 `connector_taken` when another charger has that connector."""
    await authorize(*OPERATORS)
    await charge_points.charger_of(station_id, charger_id)  # 404 first, whatever the body asks
    link = data.model_fields_set & {"charge_point_id", "connector_id"}
    if link and not query_args.dry_run:
        await charge_points.link_charger(station_id, charger_id, data.charge_point_id, data.connector_id)
        services = state()
        await quietly(publish_availability(services.bus, station_id, services.clock.now()))
    affected = Affected()
    if data.status is not None:
        _, affected = await stations.set_charger_status(
            station_id, charger_id, data.status, _change(query_args.dry_run)
        )
        if not query_args.dry_run:
            in_service = data.status == ChargerStatus.AVAILABLE
            await charger_duties.change_availability(charger_id, in_service, state().clock.now(), state().chargers)
    now = await _charger_now(station_id, charger_id)
    return ChargerChanged(**now.model_dump(), **_outcome(affected, query_args.dry_run))


async def _charger_now(station_id: int, charger_id: int) -> ChargerNow:
    view = await station_or_404(station_id)
    found = [c for c in view.chargers_now(state().clock.now()) if c["id"] == charger_id]
    if not found:
        raise NotFound("Charger not found at this station.")
    return ChargerNow.model_validate(found[0])
