"""Usage figures for operators (DESIGN §15); what each figure means is in ``app.insights``."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint
from quart_schema import document_response, security_scheme_blueprint, validate_querystring, validate_response

from app import insights
from app.auth import authorize
from app.errors import NotFound, ValidationFailed
from app.models import Role
from app.money import format_money
from app.state import state
from app.wire import Id, IsoDate, Problem, signed_in

blueprint = Blueprint("insights", __name__, url_prefix="/api/operator")
security_scheme_blueprint(blueprint, signed_in(Role.OPERATOR, Role.ADMIN))

#: Days shown when the query names none.
DEFAULT_DAYS = 30


class InsightsRequest(BaseModel):
    station_id: Id | None = Field(None, description="One station; every station when left out.")
    from_: IsoDate | None = Field(None, alias="from", description="First day (YYYY-MM-DD, station-local).")
    to: IsoDate | None = Field(
        None, description=f"Last day, inclusive; today when left out. At most {insights.MAX_DAYS} days."
    )


class Money(BaseModel):
    currency: str
    amount: str


class FiguresOut(BaseModel):
    bookings: int
    booked_charger_hours: float
    open_charger_hours: float
    utilization: float | None = Field(description="Booked ÷ open charger-hours; null when nothing was open.")
    revenue: list[Money]


class Totals(FiguresOut):
    cancelled: int
    expired: int
    no_shows: int | None = Field(description="Needs the charger link; null until chargers report.")
    energy_kwh: float | None = Field(description="Needs the charger link; null until chargers report.")


class DayOut(FiguresOut):
    date: date


class Cell(BaseModel):
    weekday: int = Field(description="ISO weekday, Monday = 1.")
    hour: int
    booked_charger_hours: float
    open_charger_hours: float
    utilization: float | None


class InsightsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    station_id: int | None
    from_: date = Field(alias="from")
    to: date
    totals: Totals
    days: list[DayOut]
    heatmap: list[Cell]


def _figures(figures: insights.Figures) -> dict[str, Any]:
    return FiguresOut(
        bookings=figures.bookings,
        booked_charger_hours=round(figures.booked_hours, 4),
        open_charger_hours=round(figures.open_hours, 4),
        utilization=None if figures.utilization is None else round(figures.utilization, 4),
        revenue=[Money(currency=c, amount=format_money(a)) for c, a in sorted(figures.revenue.items())],
    ).model_dump()


@blueprint.get("/insights")
@validate_querystring(InsightsRequest)
@validate_response(InsightsOut)
@document_response(Problem, 404)
async def get_insights(query_args: InsightsRequest) -> InsightsOut:
    """Bookings, charger-hours, utilization, revenue and lost bookings per station-local day, and
    utilization by hour of the week; for one station or all."""
    await authorize(Role.OPERATOR, Role.ADMIN)
    if query_args.station_id is not None and not await insights.station_exists(query_args.station_id):
        raise NotFound("Station not found.")
    now = state().clock.now()
    last = query_args.to or now.date()
    first = query_args.from_ or last - timedelta(days=DEFAULT_DAYS - 1)
    if not timedelta(0) <= last - first < timedelta(days=insights.MAX_DAYS):
        msg = f"`from` must be on or before `to`, at most {insights.MAX_DAYS} days before it"
        raise ValidationFailed([{"loc": ["query", "from"], "msg": msg}])
    found = await insights.compute(insights.InsightsQuery(query_args.station_id, first, last), now)
    totals = found.totals
    return InsightsOut.model_validate(
        {
            "station_id": query_args.station_id,
            "from": first,
            "to": last,
            "totals": Totals(
                **_figures(totals), cancelled=found.cancelled, expired=found.expired, no_shows=None, energy_kwh=None
            ),
            "days": [DayOut(date=day, **_figures(figures)) for day, figures in found.days],
            "heatmap": [
                Cell(
                    weekday=weekday,
                    hour=hour,
                    booked_charger_hours=round(booked, 4),
                    open_charger_hours=round(opened, 4),
                    utilization=round(booked / opened, 4) if opened > 0 else None,
                )
                for (weekday, hour), (booked, opened) in sorted(found.heatmap.items())
            ],
        }
    )
