"""The base of every response model, and the pieces several contexts share."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer


class Schema(BaseModel):
    """A response shape. Every key a route sends is declared: a service that starts sending
    an undeclared one fails loudly (and in the tests) instead of losing the key silently."""

    model_config = ConfigDict(extra="forbid")


def _iso(value: dt.datetime) -> str:
    return value.isoformat()


# a datetime sent as ``isoformat()`` — pydantic would write UTC as "Z", changing the text
Timestamp = Annotated[dt.datetime, PlainSerializer(_iso, return_type=str)]


class PageOf(Schema):
    """``total`` matches, ``limit`` and ``offset`` as asked; ``items`` in the subclass."""

    total: int
    limit: int
    offset: int


class Health(Schema):
    status: str
