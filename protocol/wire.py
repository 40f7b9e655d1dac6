"""The building blocks of every message: strict frozen models, UTC times, identifiers."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, StringConstraints

from protocol.topics import DEVICE_ID_PATTERN

SCHEMA_VERSION: Final = 1
MAX_PAYLOAD_BYTES: Final = 64 * 1024
"""Largest message either side accepts; anything bigger is rejected before parsing."""


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDateTime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ComponentId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
ShortText = Annotated[str, StringConstraints(max_length=200)]
Base64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$", max_length=8192)]


class WireModel(BaseModel):
    """``extra="forbid"`` and frozen: a message is a fact, not a mutable object."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def encode(message: WireModel) -> bytes:
    """Compact JSON, the only encoding on the wire (deterministic for a given model). Absent
    optional fields are left out: a heartbeat shrinks to a third, and every reader's default for
    them is ``None``."""
    return message.model_dump_json(exclude_none=True).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
