"""HTML pages: server-rendered shells that the static ES modules fill from the JSON API.

The server renders what is cheap and never changes under the page (title, station name, who is
signed in); everything live (open or closed, free chargers, bookings) comes from the API and the
WebSocket, so one code path serves both the first paint and every later update.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import segno
from markupsafe import Markup
from quart import Blueprint, Response, abort, render_template, request, send_from_directory, url_for
from quart_schema import hide

from app.auth import current_user
from app.errors import HTML_NOT_FOUND
from app.models import User
from app.state import state

blueprint = Blueprint("pages", __name__)

CHARGER_TYPES = ("CCS2", "TYPE2", "CHADEMO")


def _swagger_ui_files() -> Path:
    """Swagger UI's files as the swagger-ui-py package ships them, found without importing that
    package (its code wires Swagger UI into apps its own way, with an inline script)."""
    spec = find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(spec.origin).parent / "static"


SWAGGER_UI_FILES = _swagger_ui_files()
#: The only files of that package that /docs loads; nothing else of it is exposed.
DOCS_ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})


def safe_next(target: str | None) -> str:
    """Only same-site paths may be returned to after sign-in (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


async def _render(template: str, **context: Any) -> str:
    user = await current_user()
    return await render_template(template, user=user, **context)


async def not_found_page() -> str:
    """What a browser gets for any unknown page (app/errors.py decides who is a browser): a kiosk
    screen keeps its board look and says which problem it has, everyone else gets the site's page."""
    if request.path.startswith("/kiosk/"):
        return await render_template("kiosk_unknown.html")
    return await _render("not_found.html")


@blueprint.record_once
def _serve_not_found_page(setup: Any) -> None:
    setup.app.extensions[HTML_NOT_FOUND] = not_found_page


def _is_operator(user: User | None) -> bool:
    return user is not None and user.is_operator


@blueprint.get("/")
@hide
async def home() -> str:
    stations = await state().directory.listed()  # the filters offer what the public list can show
    cities = sorted({view.city for view in stations}, key=str.casefold)
    # Offer the types as stored (upper case); the views' own set is case-folded for filtering.
    stored = {charger.charger_type.upper() for view in stations for charger in view.chargers}
    charger_types = sorted(stored.union(CHARGER_TYPES))
    return await _render("home.html", cities=cities, charger_types=charger_types)


@blueprint.get("/stations/<int:station_id>")
@hide
async def station(station_id: int) -> str:
    station = await state().directory.get(station_id)
    if station is None:
        abort(404)
    return await _render("station.html", station=station)


@blueprint.get("/login")
@hide
async def login() -> str:
    return await _render("login.html", next=safe_next(request.args.get("next")))


@blueprint.get("/register")
@hide
async def register() -> str:
    return await _render("register.html", next=safe_next(request.args.get("next")))


@blueprint.get("/bookings")
@hide
async def bookings() -> str:
    return await _render("bookings.html")


def public_url_for(endpoint: str, **values: Any) -> str:
    """An absolute link for another device (a phone scanning a kiosk's QR code): under PUBLIC_URL
    when it is set, since a kiosk may reach the site by an address phones cannot; else this host."""
    base = state().settings.public_url
    if base is None:
        return url_for(endpoint, _external=True, **values)
    return base + url_for(endpoint, **values)


def station_qr_svg(url: str) -> Markup:
    """The booking link as an inline SVG: crisp at any size, no image request, no inline style."""
    svg = segno.make(url, error="m").svg_inline(scale=1, border=2, omitsize=True, dark="#0b1320", light="#ffffff")
    return Markup(svg.replace('class="segno"', 'class="qr" role="img" aria-label="QR code: book at this station"', 1))


@blueprint.get("/kiosk/<int:station_id>")
@hide
async def kiosk(station_id: int) -> str:
    station = await state().directory.get(station_id)
    if station is None:
        abort(404)
    booking_url = public_url_for("pages.station", station_id=station.id)
    return await render_template("kiosk.html", station=station, booking_url=booking_url, qr=station_qr_svg(booking_url))


async def _operator_page(template: str, **context: Any) -> str | tuple[str, int]:
    """Operator pages: the shell for operators, a plain "operators only" page (403) for others.
    The API behind the page enforces the role on every call anyway."""
    if not _is_operator(await current_user()):
        return await _render(template, allowed=False, station=None), 403
    return await _render(template, allowed=True, **context)


@blueprint.get("/operator")
@hide
async def operator_home() -> str | tuple[str, int]:
    return await _operator_page("operator/index.html")


@blueprint.get("/operator/stations/new")
@hide
async def operator_new_station() -> str | tuple[str, int]:
    return await _operator_page("operator/station.html", station=None)


@blueprint.get("/operator/stations/<int:station_id>")
@hide
async def operator_station(station_id: int) -> str | tuple[str, int]:
    if not _is_operator(await current_user()):
        return await _operator_page("operator/station.html")
    station = await state().directory.get(station_id)
    if station is None:
        abort(404)
    return await _operator_page("operator/station.html", station=station)


@blueprint.get("/operator/bookings")
@hide
async def operator_bookings() -> str | tuple[str, int]:
    return await _operator_page("operator/bookings.html")


@blueprint.get("/operator/users")
@hide
async def operator_users() -> str | tuple[str, int]:
    return await _operator_page("operator/users.html")


@blueprint.get("/operator/insights")
@hide
async def operator_insights() -> str | tuple[str, int]:
    return await _operator_page("operator/insights.html")


@blueprint.get("/docs")
@hide
async def docs() -> str:
    """The API browser: Swagger UI from its Python package, started by static/js/docs.js, so the
    page works without internet access and under the same CSP as every other page."""
    return await render_template("docs.html")


@blueprint.get("/docs/assets/<name>")
@hide
async def docs_asset(name: str) -> Response:
    if name not in DOCS_ASSETS:
        abort(404)
    return await send_from_directory(SWAGGER_UI_FILES, name)
