"""Sign-up, sign-in, sign-out and "who am I" (DESIGN §5, Accounts)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from quart import Blueprint, request
from quart_schema import document_response, security_scheme, validate_request, validate_response

from app import accounts
from app.auth import authorize, sign_in, sign_out
from app.models import User
from app.state import state
from app.wire import PlainStr, Problem, signed_in

blueprint = Blueprint("auth", __name__, url_prefix="/api/auth")


class RegisterIn(BaseModel):
    email: PlainStr = Field(max_length=320, description="Trimmed and lower-cased before use.")
    username: PlainStr = Field(max_length=128, description="3 to 64 letters, digits, dots, hyphens or underscores.")
    password: str = Field(
        max_length=1024,
        description="8 to 128 characters; not a common password and not containing the email or username.",
    )


class LoginIn(BaseModel):
    email: PlainStr = Field(max_length=320)
    password: str = Field(max_length=1024)


class UserOut(BaseModel):
    id: int
    email: str
    username: str
    role: str
    is_active: bool
    created_at: datetime
    id_tag: str | None = Field(None, description="The driver's OCPP idTag: an app token, or printed on an RFID card.")


class SignedOut(BaseModel):
    status: str


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        username=user.username,
        role=user.role.value,
        is_active=user.is_active,
        created_at=user.created_at,
        id_tag=user.id_tag,
    )


def _client() -> str:
    """The client address counted by the throttles (put Hypercorn's proxy fix in front of a proxy)."""
    return request.remote_addr or "unknown"


@blueprint.post("/register")
@validate_request(RegisterIn)
@validate_response(UserOut, 201)
@document_response(Problem, 409)
@document_response(Problem, 429)
async def register(data: RegisterIn) -> tuple[UserOut, int]:
    """Create a driver account and sign it in. 409 when the email or username is taken (without
    saying which), 429 after too many registrations from one client."""
    await state().throttle.count_registration(_client())
    user = await accounts.create_user(data.email, data.username, data.password)
    await sign_in(user)
    return user_out(user), 201


@blueprint.post("/login")
@validate_request(LoginIn)
@validate_response(UserOut)
@document_response(Problem, 401)
@document_response(Problem, 429)
async def login(data: LoginIn) -> UserOut:
    """Sign in with email and password; sets the session and `csrf_token` cookies. 401 for any
    wrong email or password alike, 403 `user_inactive` for a deactivated account, 429 with
    `Retry-After` after repeated failures for the account or from the client."""
    user = await accounts.authenticate(state().throttle, data.email, data.password, _client())
    await sign_in(user)
    return user_out(user)


@blueprint.post("/logout")
@validate_response(SignedOut)
async def logout() -> SignedOut:
    """End this session everywhere its cookie may have been copied."""
    await sign_out()
    return SignedOut(status="signed_out")


@blueprint.get("/me")
@validate_response(UserOut)
@security_scheme(signed_in())
async def me() -> UserOut:
    """The signed-in user; 401 when signed out."""
    return user_out(await authorize())
