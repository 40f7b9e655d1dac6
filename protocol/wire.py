"""The building blocks of every message: strict frozen models, UTC times, identifiers, bounded
integers, and the one guarded way to read JSON off the wire."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from itertools import accumulate
from typing import Annotated, Any, Final

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from protocol.topics import DEVICE_ID_PATTERN

SCHEMA_VERSION: Final = 1
MAX_PAYLOAD_BYTES: Final = 64 * 1024
"""Largest message either side accepts; anything bigger is rejected before parsing."""
MAX_JSON_DEPTH: Final = 32
"""Deepest nesting of arrays and objects either side parses (the deepest message needs 4)."""
MAX_INT: Final = 2**63 - 1
"""Every integer on the wire fits a signed 64-bit integer: SQLite's INTEGER, on both sides."""
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""Datetimes before this are refused (a device without a clock still counts from 1970)."""


def _as_utc(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00: no such instant in UTC
        raise ValueError("datetime out of range once converted to UTC") from None
    if utc < EARLIEST:
        raise ValueError("datetime before 1970-01-01T00:00:00Z")
    return utc


UtcDateTime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
"""Aware, converted to UTC, between 1970 and the year 9999."""
PositiveInt63 = Annotated[int, Field(ge=1, le=MAX_INT)]
NonNegativeInt63 = Annotated[int, Field(ge=0, le=MAX_INT)]
DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ComponentId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
ShortText = Annotated[str, StringConstraints(max_length=200)]
Base64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]*={0,2}$", max_length=8192)]


class WireModel(BaseModel):
    """``extra="forbid"`` and frozen: a message is a fact, not a mutable object. No NaN or
    infinity: JSON has neither, and a stored one breaks every reader downstream."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def encode(message: WireModel) -> bytes:
    """Compact JSON, the only encoding on the wire (deterministic for a given model). Absent
    optional fields are left out: a heartbeat shrinks to a third, and every reader's default for
    them is ``None``."""
    return message.model_dump_json(exclude_none=True).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- reading JSON off the wire ------------------------------------------------------------------


class PayloadError(ValueError):
    """A payload refused before (or while) parsing it; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1
_NOT_BRACKETS = bytes(b for b in range(256) if not _STEP[b])


def json_depth(payload: bytes) -> int:
    """How deeply arrays and objects nest in ``payload`` (brackets inside strings not counted),
    without parsing it: the parsers recurse, and a deep enough document exhausts their stack."""
    brackets = _STRING.sub(b"", payload).translate(None, _NOT_BRACKETS)
    return max(accumulate(_STEP[b] for b in brackets), default=0)


def check_payload(payload: bytes) -> None:
    """Raise ``PayloadError`` (``oversized``, ``too_deep``) for what must not reach a parser."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError("oversized", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    if payload.count(b"[") + payload.count(b"{") <= MAX_JSON_DEPTH:
        return  # the common case, two scans in C: too few brackets to nest too deep
    depth = json_depth(payload)
    if depth > MAX_JSON_DEPTH:
        raise PayloadError("too_deep", f"JSON nested {depth} deep > {MAX_JSON_DEPTH}")


def decode_json(payload: bytes) -> Any:
    """Parse untrusted JSON: size and depth checked first, ``PayloadError`` for anything wrong
    (``oversized``, ``too_deep``, ``malformed_json``), never another exception."""
    check_payload(payload)
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise PayloadError("malformed_json", f"(message): {exc}") from None
