"""Parsing the tus 1.0 request headers (``Upload-Metadata``, ``Upload-Checksum``, numbers)."""

from __future__ import annotations

import base64
import binascii
import re

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,checksum,termination"
CHECKSUM_ALGORITHMS = "sha256"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"

_KEY = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_NUMBER = re.compile(r"^[0-9]{1,19}$")


class HeaderError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_metadata(header: str) -> dict[str, bytes]:
    """``key base64value,key2 base64value2,key3`` → values (empty when a key has none)."""
    metadata: dict[str, bytes] = {}
    if not header.strip():
        return metadata
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        key = parts[0]
        if not _KEY.match(key) or len(parts) > 2 or key in metadata:
            raise HeaderError("bad_metadata", f"Upload-Metadata: bad or repeated key {key!r}")
        try:
            metadata[key] = base64.b64decode(parts[1], validate=True) if len(parts) == 2 else b""
        except (binascii.Error, ValueError):
            raise HeaderError(
                "bad_metadata", f"Upload-Metadata: the value of {key!r} is not base64"
            ) from None
    return metadata


def parse_number(name: str, value: str | None) -> int:
    if value is None:
        raise HeaderError(f"missing_{_slug(name)}", f"{name} is required")
    if not _NUMBER.match(value.strip()):
        raise HeaderError(f"bad_{_slug(name)}", f"{name} must be a non-negative integer")
    return int(value)


def parse_checksum(value: str | None) -> bytes | None:
    """The sha256 digest named by ``Upload-Checksum: sha256 <base64>``, or ``None`` without one."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm.lower() != "sha256":
        raise HeaderError(
            "unsupported_checksum",
            f"Upload-Checksum algorithm {algorithm!r} is not supported (Tus-Checksum-Algorithm: "
            f"{CHECKSUM_ALGORITHMS})",
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise HeaderError("bad_checksum", "Upload-Checksum must carry a base64 sha256 digest")
    return digest


def _slug(name: str) -> str:
    return name.lower().replace("upload-", "").replace("-", "_")
