"""What the HTTP layer promises before any handler runs, kept true in ``/openapi.json`` as well.

The gaps between a raw request and the contract live here: an undecodable body, or one nested too
deep to parse safely, is a malformed one (422, never a 500); an id names a database row, so a
number no row can have is an unknown URL in a path (404) and a malformed field in a body or query
(422), never an overflow in the driver; text that is stored must be text the database can hold;
and error responses are documented with the media type they are sent with, each operation listing
every problem status it can answer (``ContractOpenAPI``).
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterable
from datetime import date, datetime
from itertools import accumulate
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StrictInt
from quart import Quart, Request, Response
from quart_schema import OpenAPIProvider
from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter, IntegerConverter, Map, Rule

from app.clock import YEARS, supported_year
from app.errors import PROBLEM_JSON, ValidationFailed

#: Primary keys are PostgreSQL ``integer`` columns.
MAX_ID = 2**31 - 1

#: An id in a body or query: outside the column's range it can name no row, and the driver would
#: refuse to even send it, so it is a 422 like any other malformed field.
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
StrictId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
    return value


#: Text that is stored or looked up. PostgreSQL cannot hold a NUL character, and a lone surrogate
#: (``"\ud800"`` is valid JSON) cannot be encoded for either database.
PlainStr = Annotated[str, AfterValidator(_storable)]
#: Paging past this many rows is never meant; beyond 2^63 the database cannot take the number.
Offset = Annotated[int, Field(ge=0, le=MAX_ID)]


#: ISO 8601 as the API documents it: a calendar date, a time to the minute or finer, and an
#: optional UTC offset.
_ISO_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)
DATE_TIME_FORM = f"must be an ISO 8601 date-time such as 2026-12-02T18:00:00 or 2026-12-02T12:30:00Z, {YEARS}"


def parse_date_time(value: object) -> datetime:
    """A date-time sent as ISO 8601 text; ValueError saying the expected form for anything else.

    ``datetime.fromisoformat`` alone reads more than the API promises: week dates
    (``2026-W49-3T10:00``), ordinal dates and trailing characters such as a NUL. Each would be one
    more spelling of an instant, or a typo silently read as one.
    """
    if not isinstance(value, str) or not _ISO_DATE_TIME.fullmatch(value):
        raise ValueError(DATE_TIME_FORM)
    try:
        return supported_year(datetime.fromisoformat(value))
    except ValueError:
        raise ValueError(DATE_TIME_FORM) from None


DATE_FORM = f"must be a date written YYYY-MM-DD, {YEARS}"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_date(value: object) -> date:
    """A calendar date sent as ``YYYY-MM-DD``. A lax date would also read ``0`` (a Unix timestamp)
    as 1 January 1970, turning a typo into half a century of data."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError(DATE_FORM)
    try:
        return supported_year(date.fromisoformat(value))
    except ValueError:
        raise ValueError(DATE_FORM) from None


#: A date in a query or body: ``YYYY-MM-DD`` only.
IsoDate = Annotated[date, BeforeValidator(parse_date, json_schema_input_type=str)]


def decimal_range_pattern(limit: int) -> str:
    """A regular expression for exactly the numbers 1..``limit`` in plain ASCII decimal digits.

    Every number up to ``limit`` is written with fewer digits, or with as many digits and a smaller
    digit where it first differs from ``limit``; one branch per such position, then ``limit`` itself.
    """
    digits = str(limit)
    branches = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    for position, digit in enumerate(digits):
        lowest = 1 if position == 0 else 0
        if int(digit) > lowest:
            rest = len(digits) - position - 1
            branches.append(f"{digits[:position]}[{lowest}-{int(digit) - 1}][0-9]{{{rest}}}")
    branches.append(digits)
    return f"(?:{'|'.join(branches)})"


class IdConverter(IntegerConverter):
    """``<int:…>`` in every route: an id a row can have, written the one way ids are written.

    The URL map matches a path by this pattern before it looks at the method, so a path no id route
    can take is an unknown URL (404) for every method, never a 405 from a neighbouring route. The
    pattern, not ``int()``, is what refuses other spellings of a number: ``int`` would read
    ``00001`` and a full-width ``"\uff11"`` as 1, giving one row several URLs.
    """

    regex = decimal_range_pattern(MAX_ID)

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = 1, max: int | None = MAX_ID) -> None:
        super().__init__(map, fixed_digits, min=min, max=max)


#: Deeper than any body the API takes (an hours document is four levels), far shallower than the
#: parser's own recursion limit.
MAX_JSON_DEPTH = 32
#: A JSON string, escapes included: brackets inside one open no level.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
#: How each bracket moves the depth: an opener one level in, a closer one level out.
_DEPTH_STEP = [1 if byte in b"[{" else -1 if byte in b"]}" else 0 for byte in range(256)]


def nests_deeper_than(body: bytes, limit: int) -> bool:
    """Whether arrays and objects in ``body`` nest more than ``limit`` levels, counted without parsing.

    The JSON parser recurses once per level and fails with a RecursionError (a 500) near a thousand
    levels, which a 2 KB body reaches; so the depth is counted first, as a running sum over the
    brackets outside strings. A body with no more openers than the limit cannot exceed it, which
    keeps the count off the path of every ordinary request.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets), initial=0)) > limit


class JsonRequest(Request):
    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """Bytes that are not UTF-8 are malformed JSON: the same 422 as any other unparsable body.
        Nesting deeper than ``MAX_JSON_DEPTH`` is refused before the parser can overflow its stack."""
        # Read with the cache on: without it the parser below would find the body already consumed.
        body = await self.get_data(cache=True, as_text=False, parse_form_data=False) if force or self.is_json else b""
        if nests_deeper_than(body, MAX_JSON_DEPTH):
            if silent:
                return None
            msg = f"must not nest arrays and objects more than {MAX_JSON_DEPTH} levels deep"
            raise ValidationFailed([{"loc": ["body"], "msg": msg}])
        try:
            return await super().get_json(force, silent, cache)
        except UnicodeDecodeError as error:
            return None if silent else self.on_json_loading_failed(error)


class ContractQuart(Quart):
    """Quart, corrected where it would answer a request the contract covers with a 500."""

    async def send_static_file(self, filename: str) -> Response:
        """A name longer than the filesystem allows is a file that does not exist: 404, as for any
        other missing file. Looking it up raises OSError (ENAMETOOLONG) instead of finding nothing."""
        try:
            return await super().send_static_file(filename)
        except OSError as error:
            if error.errno != errno.ENAMETOOLONG:
                raise
            raise NotFound() from None


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``); clients branch on ``code``."""

    media_type: ClassVar[str] = PROBLEM_JSON

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str
    errors: list[dict[str, Any]] | None = None


class NoContent:
    """``document_response(NoContent, 204)``: a success without a body, which quart-schema could
    otherwise only document as a JSON body of some model."""

    description = "No content."


#: The security scheme of a signed-in browser: the session cookie that sign-in sets (app/auth.py).
SESSION_SCHEME = "session"
UNSAFE_METHODS = frozenset({"post", "put", "patch", "delete"})


def signed_in(*roles: str) -> list[dict[str, list[str]]]:
    """The OpenAPI security requirement of routes behind ``authorize(*roles)``. OpenAPI 3.1 lets an
    API-key scheme list the roles an operation needs, which is what tells the document (and a
    client) that a signed-in user without one of them gets a 403."""
    return [{SESSION_SCHEME: list(roles)}]


def implied_problems(path: str, method: str, operation: dict[str, Any]) -> dict[int, list[str]]:
    """The problem statuses an operation can answer whatever its handler does, each with its reasons.

    They follow from what the operation object already says: validated input can be malformed
    (422), an id in the path can name no row (404), a security requirement can be unmet (401, and
    403 for a role it lists), and cookie-authenticated changes need the CSRF token (403). Every API
    operation reads the database or the bus, which can be out of reach (503).
    """
    found: dict[int, list[str]] = {}
    parameters = operation.get("parameters", [])
    if "requestBody" in operation or any(p["in"] != "path" for p in parameters):
        found.setdefault(422, []).append("`validation_error`: the request is not valid; `errors` names each field.")
    if any(p["in"] == "path" and p["schema"].get("type") == "integer" for p in parameters):
        found.setdefault(404, []).append("`not_found`: no such resource, or it is somebody else's.")
    for requirement in operation.get("security", []):
        found.setdefault(401, []).append("`unauthenticated`: sign in first.")
        if any(requirement.values()):
            found.setdefault(403, []).append("`forbidden`: your role may not do this.")
    if method in UNSAFE_METHODS:
        found.setdefault(403, []).append("`csrf_failed`: a signed-in change without a matching `X-CSRF-Token`.")
    if path.startswith("/api/"):
        found.setdefault(503, []).append("`unavailable`: the database or the bus is out of reach; retry.")
    return found


class ContractOpenAPI(OpenAPIProvider):
    """quart-schema's document, corrected where it would disagree with the responses sent."""

    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        """Each operation with the problem statuses it implies added to those its route documents;
        a route's own ``document_response`` for a status wins, being the more specific."""
        paths, definitions = super().build_paths(rule)
        for path, operations in paths.items():
            for method, operation in operations.items():
                implied = {
                    status: self._problem(reasons)
                    for status, reasons in implied_problems(path, method, operation).items()
                }
                operation["responses"] = dict(sorted({**implied, **operation["responses"]}.items()))
        return paths, definitions

    def _problem(self, reasons: Iterable[str]) -> dict[str, Any]:
        response, _ = self.build_response_object(Problem, None)
        response["description"] = " ".join(reasons)
        return response

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if isinstance(converter, IntegerConverter):
            bounds = {"minimum": converter.min, "maximum": converter.max}
            parameter["schema"].update({key: value for key, value in bounds.items() if value is not None})
        return parameter

    def build_response_object(self, model: type[Any], headers_model: type[Any] | None) -> tuple[dict, dict]:
        if model is NoContent:
            return {"description": NoContent.description}, {}
        response, definitions = super().build_response_object(model, headers_model)
        media_type = getattr(model, "media_type", None)
        if media_type is not None:
            response["content"][media_type] = response["content"].pop("application/json")
        return response, definitions
