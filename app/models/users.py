from __future__ import annotations

import secrets
from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    DRIVER = "driver"
    OPERATOR = "operator"
    ADMIN = "admin"


#: Letters and digits an RFID label or a person can read back without mistaking one for another.
_TAG_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
ID_TAG_LENGTH = 16  # OCPP 1.6 idTags hold up to 20 characters


def new_id_tag() -> str:
    """A random idTag: 16 characters of 32 kinds, 80 bits, so a guess never hits someone's."""
    return "".join(secrets.choice(_TAG_ALPHABET) for _ in range(ID_TAG_LENGTH))


class User(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)
    username = fields.CharField(max_length=64, unique=True)
    password_hash = fields.CharField(max_length=255)
    is_active = fields.BooleanField(default=True)
    role = fields.CharEnumField(Role, max_length=16, default=Role.DRIVER)
    # The driver's OCPP idTag (app token or RFID card), for ``Authorize``/``StartTransaction``.
    id_tag = fields.CharField(max_length=20, unique=True, null=True, default=new_id_tag)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"

    @property
    def is_operator(self) -> bool:
        return self.role in (Role.OPERATOR, Role.ADMIN)


class Session(Model):
    """A signed-in browser. Deleting the row signs that browser out for good, cookie or not."""

    id = fields.CharField(max_length=64, primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "sessions"
