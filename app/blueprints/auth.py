from __future__ import annotations

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_request, validate_response

from app import accounts
from app.auth import authorize, sign_in, sign_out
from app.models import User

blueprint = Blueprint("auth", __name__, url_prefix="/api/auth")


class RegisterIn(BaseModel):
    email: str = Field(max_length=254)
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class LoginIn(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class UserOut(BaseModel):
    id: int
    email: str
    username: str
    role: str
    is_active: bool


def _user_out(user: User) -> UserOut:
    return UserOut(id=user.id, email=user.email, username=user.username, role=user.role.value, is_active=user.is_active)


@blueprint.post("/register")
@validate_request(RegisterIn)
@validate_response(UserOut, 201)
async def register(data: RegisterIn) -> tuple[UserOut, int]:
    """Create a driver account and sign it in."""
    user = await accounts.create_user(data.email, data.username, data.password)
    await sign_in(user)
    return _user_out(user), 201


@blueprint.post("/login")
@validate_request(LoginIn)
@validate_response(UserOut)
async def login(data: LoginIn) -> UserOut:
    """Sign in with email and password; sets the session and `csrf_token` cookies."""
    user = await accounts.authenticate(data.email, data.password)
    await sign_in(user)
    return _user_out(user)


@blueprint.post("/logout")
async def logout() -> tuple[dict[str, str], int]:
    """End this session everywhere its cookie may have been copied."""
    await sign_out()
    return {"status": "signed_out"}, 200


@blueprint.get("/me")
@validate_response(UserOut)
async def me() -> UserOut:
    return _user_out(await authorize())
