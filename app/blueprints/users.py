"""Accounts for operators and admins (DESIGN §15): operators may look, only admins may change."""

from __future__ import annotations

from pydantic import BaseModel, Field, StrictBool, field_validator
from quart import Blueprint
from quart_schema import security_scheme, validate_querystring, validate_request, validate_response

from app import users
from app.auth import authorize
from app.blueprints.auth import UserOut, user_out
from app.errors import ValidationFailed
from app.models import Role
from app.state import state
from app.wire import Offset, PlainStr, signed_in

blueprint = Blueprint("users", __name__, url_prefix="/api/users")


class UsersQuery(BaseModel):
    q: PlainStr | None = Field(None, max_length=254, description="Part of the email or username, any case.")
    role: Role | None = None
    is_active: bool | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: Offset = 0

    @field_validator("q", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: object) -> object:
        return (value.strip() or None) if isinstance(value, str) else value


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class UserChange(BaseModel):
    is_active: StrictBool | None = Field(None, description="false ends every session of the user at once.")
    role: Role | None = None


@blueprint.get("")
@security_scheme(signed_in(Role.OPERATOR, Role.ADMIN))
@validate_querystring(UsersQuery)
@validate_response(UserPage)
async def list_users(query_args: UsersQuery) -> UserPage:
    """Accounts by id, searchable by email or username; operators and admins."""
    await authorize(Role.OPERATOR, Role.ADMIN)
    where = users.UserFilter(text=query_args.q, role=query_args.role, is_active=query_args.is_active)
    total, found = await users.find_users(where, limit=query_args.limit, offset=query_args.offset)
    return UserPage(
        items=[user_out(user) for user in found], total=total, limit=query_args.limit, offset=query_args.offset
    )


@blueprint.patch("/<int:user_id>")
@security_scheme(signed_in(Role.ADMIN))
@validate_request(UserChange)
@validate_response(UserOut)
async def change_user(user_id: int, data: UserChange) -> UserOut:
    """Activate or deactivate an account, or change its role; admins only. Deactivating signs the
    user out everywhere at once and expires their unpaid holds. Nobody can deactivate or demote
    their own account (403)."""
    admin = await authorize(Role.ADMIN)
    if data.is_active is None and data.role is None:
        raise ValidationFailed([{"loc": ["body"], "msg": "send is_active, role or both"}])
    services = state()
    changed = await users.change_user(
        admin, user_id, is_active=data.is_active, role=data.role, now=services.clock.now(), bus=services.bus
    )
    return user_out(changed)
