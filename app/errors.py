"""Domain errors and the one place that turns any failure into RFC 9457 problem JSON.

Domain code raises these; blueprints never build error responses by hand. The ``code`` values are
part of the API contract (DESIGN §6): clients branch on them. Any other exception is a bug (500),
unless it says a database or the bus is out of reach (``is_outage``): that is a 503 to retry.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Mapping
from http import HTTPStatus
from typing import Any

from asyncpg import exceptions as postgres
from pydantic import ValidationError as PydanticValidationError
from quart import Quart, Response, current_app, g, json, request
from quart_schema import RequestSchemaValidationError
from redis import exceptions as redis
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
#: ``app.extensions`` key of the coroutine that renders the HTML of the "not found" page a browser
#: gets (the pages blueprint registers it); without one every 404 is problem JSON.
HTML_NOT_FOUND = "html_not_found"
NotFoundPage = Callable[[], Awaitable[str]]


class DomainError(Exception):
    status: int = 400
    code: str = "bad_request"
    detail: str = "The request could not be processed."
    #: Seconds to wait before trying again, sent as ``Retry-After``; a ``retry_after`` extra wins.
    retry_after: int | None = None
    #: Further response headers the status calls for (``WWW-Authenticate`` on a 401).
    headers: Mapping[str, str] = {}

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.detail)
        if detail is not None:
            self.detail = detail
        self.extra = extra


class ValidationFailed(DomainError):
    status, code, detail = 422, "validation_error", "The request is not valid."

    def __init__(self, errors: list[dict[str, Any]], detail: str | None = None) -> None:
        if detail is None and len(errors) == 1:
            detail = errors[0]["msg"]  # said in words already, like the booking checks' refusals
        super().__init__(detail or describe(errors), errors=errors)


#: How many wrong fields the ``detail`` of a validation problem names; ``errors`` has them all.
NAMED_IN_DETAIL = 3


def field_name(loc: list[Any] | tuple[Any, ...]) -> str:
    """A field as a person reads it: ``hours.regular_hours[2].period_end``, without the "body" or
    "query" that says where it was sent."""
    name = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query") else loc:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name or "the request"


def describe(errors: list[dict[str, Any]]) -> str:
    """A validation problem's ``detail``: each wrong field named with what is wrong with it, so a
    client that shows only the detail still tells its user what to fix."""
    named = [f"{field_name(error['loc'])}: {error['msg']}" for error in errors[:NAMED_IN_DETAIL]]
    more = len(errors) - NAMED_IN_DETAIL
    tail = f" (and {more} more)" if more > 0 else ""
    return ("; ".join(named) + tail) if named else "The request is not valid."


class Unauthenticated(DomainError):
    status, code, detail = 401, "unauthenticated", "Sign in to continue."


class Forbidden(DomainError):
    status, code, detail = 403, "forbidden", "You do not have permission to do this."


class CsrfFailed(DomainError):
    status, code, detail = 403, "csrf_failed", "The CSRF token is missing or does not match."


class StationClosed(DomainError):
    status, code, detail = 403, "station_closed", "Station is closed. Booking not allowed."


class StationInactive(DomainError):
    status, code, detail = 403, "station_inactive", "Station is not accepting bookings."


class UserInactive(DomainError):
    status, code, detail = 403, "user_inactive", "This account is deactivated."


class NotFound(DomainError):
    status, code, detail = 404, "not_found", "Not found."


class Conflict(DomainError):
    status, code, detail = 409, "conflict", "The request conflicts with the current state."


class NoChargerAvailable(Conflict):
    code, detail = "no_charger_available", "No charger is free for the whole slot."


class BookingNotPayable(Conflict):
    code, detail = "booking_not_payable", "This booking cannot be paid."


class IdempotencyInProgress(Conflict):
    code, detail = "idempotency_in_progress", "A request with this Idempotency-Key is still in progress."


class HoldLimitReached(Conflict):
    code, detail = "hold_limit_reached", "You already hold the maximum number of unpaid bookings."


class IdempotencyKeyReused(DomainError):
    status, code = 422, "idempotency_key_reused"
    detail = "This Idempotency-Key was used with a different request body."


class AmountInvalid(DomainError):
    status, code, detail = 400, "amount_invalid", "The amount does not match the amount due."


class PaymentDeclined(DomainError):
    status, code, detail = 402, "payment_declined", "The payment was declined."


class RateLimited(DomainError):
    status, code, detail = 429, "rate_limited", "Too many requests. Try again later."


class Unavailable(DomainError):
    status, code, detail = 503, "unavailable", "The service is temporarily unavailable."
    retry_after = 5  # seconds: time for a restarted database or a reconnecting pool, and no more


#: What an unreachable database or bus raises, by type. Tortoise wraps driver errors in its own
#: (``OperationalError`` whatever the cause), so the whole chain of causes is searched.
OUTAGES: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timed out, unresolvable; Tortoise's DBConnectionError is one too
    postgres.PostgresConnectionError,  # SQLSTATE class 08: the connection failed or is gone
    postgres.InvalidCatalogNameError,  # the database itself was dropped
    postgres.AdminShutdownError,  # connections terminated by an administrator or a forced drop
    postgres.CrashShutdownError,
    postgres.CannotConnectNowError,  # the server is starting or stopping
    postgres.InsufficientResourcesError,  # too many connections, disk full, out of memory
    postgres.InternalClientError,  # the driver's view of a connection that died under it
    redis.ConnectionError,
    redis.TimeoutError,
)
#: SQLite raises one type for every failure; these primary result codes are the database file being
#: unusable for now (locked by another writer, unreadable, unopenable, full), not a wrong statement.
SQLITE_OUTAGES = frozenset(
    {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL}
)


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, then what it was raised from or while handling, as far back as the chain goes.
    A ``raise ... from None`` ends the chain: its author declared the earlier error irrelevant."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` means a database or the bus cannot be reached (503), as opposed to a bug
    (500). Decided by the types in the chain, never by message text, which drivers reword."""
    return any(isinstance(link, OUTAGES) or _sqlite_outage(link) for link in causes(error))


def _sqlite_outage(error: BaseException) -> bool:
    code = getattr(error, "sqlite_errorcode", None) if isinstance(error, sqlite3.Error) else None
    return code is not None and (code & 0xFF) in SQLITE_OUTAGES  # extended codes keep the primary low


def problem_body(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The RFC 9457 body: what every error response sends, and what an idempotent replay stores."""
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }


def problem(status: int, code: str, detail: str, **extra: Any) -> Response:
    body = problem_body(status, code, detail, **extra)
    return Response(json.dumps(body), status=status, content_type=PROBLEM_JSON)


def pydantic_errors(error: PydanticValidationError, prefix: tuple[str, ...] = ("body",)) -> list[dict[str, Any]]:
    return [{"loc": [*prefix, *err["loc"]], "msg": _plain(err["msg"])} for err in error.errors()]


def _plain(message: str) -> str:
    """pydantic's message for a validator's ValueError, without the "Value error, " it prefixes."""
    return message.removeprefix("Value error, ")


def wants_html() -> bool:
    """A person's browser opening a page, as opposed to an API client: its Accept header ranks
    HTML above JSON (``*/*`` or no Accept at all means an API client). Never under /api/."""
    if request.path.startswith(("/api/", "/ws/")):
        return False
    best = request.accept_mimetypes.best_match(["application/json", PROBLEM_JSON, "text/html"])
    return best == "text/html"


async def not_found(detail: str) -> Response:
    """A 404: the site's "not found" page for a browser, problem JSON for everyone else."""
    page: NotFoundPage | None = current_app.extensions.get(HTML_NOT_FOUND)
    if page is not None and wants_html():
        return Response(await page(), status=404, content_type="text/html; charset=utf-8")
    return problem(404, "not_found", detail)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}


def register_error_handlers(app: Quart) -> None:
    @app.errorhandler(DomainError)
    async def _domain(error: DomainError) -> Response:
        response = problem(error.status, error.code, error.detail, **error.extra)
        response.headers.update(error.headers)
        retry_after = error.extra.get("retry_after", error.retry_after)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(RequestSchemaValidationError)
    async def _schema(error: RequestSchemaValidationError) -> Response:
        cause = error.validation_error
        where = "query" if "Querystring" in type(error).__name__ else "body"
        if isinstance(cause, PydanticValidationError):
            errors = pydantic_errors(cause, (where,))
        else:
            errors = [{"loc": [where], "msg": "Expected a JSON object."}]
        return problem(422, "validation_error", describe(errors), errors=errors)

    @app.errorhandler(HTTPException)
    async def _http(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 400:
            # Malformed JSON and the like: the contract calls every bad body a 422.
            return problem(
                422,
                "validation_error",
                "The request body is not valid JSON.",
                errors=[{"loc": ["body"], "msg": "Malformed JSON."}],
            )
        if status == 404:
            return await not_found(error.description or HTTPStatus(status).phrase)
        code = _HTTP_CODES.get(status, HTTPStatus(status).phrase.lower().replace(" ", "_"))
        response = problem(status, code, error.description or HTTPStatus(status).phrase)
        if status == 405 and error.get_headers():
            for name, value in error.get_headers():
                if name.lower() == "allow":
                    response.headers["Allow"] = value
        return response

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        request_id = g.get("request_id", "-")
        if is_outage(error):
            chain = " <- ".join(f"{type(link).__name__}: {link}" for link in causes(error))
            log.error("unavailable [%s] %s %s: %s", request_id, request.method, request.path, chain)
            return await _domain(Unavailable())
        log.exception("unhandled error [%s] %s %s", request_id, request.method, request.path, exc_info=error)
        return problem(500, "internal_error", f"Something went wrong on our side (request {request_id}).")
