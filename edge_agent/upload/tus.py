"""A tus 1.0 client for the collector's ``/api/v1/uploads`` (creation, checksum).

Why aiohttp on the agent's event loop, not ``http.client`` in a worker thread: the agent is one
asyncio process (``edge_agent/agent.py``) and aiohttp is already a dependency; a request in flight
is cancelled with its task at shutdown, where a blocked ``http.client`` call in a thread could only
be waited out; and the bandwidth limit paces the body with the injected clock. The only blocking
work, reading and hashing the spool file, runs in worker threads (``asyncio.to_thread``).

Every answer is translated here into :mod:`edge_agent.upload.errors`; nothing of aiohttp leaves
this module.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from pydantic import ValidationError

from edge_agent.upload.errors import (
    ChecksumMismatchError,
    CollectorUnavailableError,
    OffsetMismatchError,
    ReceiptRejectedError,
    UploadCorruptedError,
    UploadGoneError,
    UploadRefusedError,
)
from edge_agent.upload.pacing import RateLimiter
from protocol.recording import SignedManifest, SignedReceipt

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
UPLOADS_PATH = "/api/v1/uploads"
COLLECTOR_KEY_PATH = "/api/v1/keys/collector"
RECEIPT_HEADER = "Custos-Receipt"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"


@dataclass(frozen=True)
class Progress:
    """Where an upload stands: the collector's durable offset, and its receipt once complete."""

    offset: int
    receipt: SignedReceipt | None = None


@dataclass(frozen=True)
class Created:
    url: str
    """The upload's URL as stored in the catalog (a path when on the collector's own origin)."""
    receipt: SignedReceipt | None = None
    """Set when the collector already holds this very segment."""


class TusClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        token: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/") + "/"
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._limiter = limiter

    def absolute(self, url: str) -> str:
        return urljoin(self._base, url)

    def _storable(self, location: str) -> str:
        """Keep a path for uploads on the collector's origin, so a changed ``collector.url``
        (a new address for the same collector) still finds them."""
        resolved, base = urlsplit(self.absolute(location)), urlsplit(self._base)
        if (resolved.scheme, resolved.netloc) == (base.scheme, base.netloc):
            return resolved.path
        return resolved.geturl()

    async def collector_key(self) -> str:
        """The collector's receipt key (base64 of the raw Ed25519 public key)."""
        async with self._request("GET", self.absolute(COLLECTOR_KEY_PATH)) as response:
            await _check(response)
            try:
                body = await response.json()
                key = body["public_key"]
            except (aiohttp.ContentTypeError, ValueError, KeyError, TypeError) as exc:
                raise CollectorUnavailableError(f"no collector key in the answer: {exc}") from exc
        if not isinstance(key, str):
            raise CollectorUnavailableError("the collector key is not a string")
        return key

    async def create(self, signed: SignedManifest) -> Created:
        size = signed.parsed().size
        encoded = base64.b64encode(signed.model_dump_json().encode()).decode()
        headers = {"Upload-Length": str(size), "Upload-Metadata": f"manifest {encoded}"}
        async with self._request("POST", self.absolute(UPLOADS_PATH), headers=headers) as response:
            await _check(response)
            location = response.headers.get("Location")
            if response.status != 201 or not location:
                raise CollectorUnavailableError(
                    f"creation answered {response.status} without Location"
                )
            return Created(self._storable(location), _receipt(response.headers))

    async def head(self, url: str) -> Progress:
        async with self._request("HEAD", self.absolute(url)) as response:
            await _check(response)
            return Progress(_offset(response.headers), _receipt(response.headers))

    async def patch(self, url: str, offset: int, chunk: bytes) -> Progress:
        """Send ``chunk`` at ``offset`` with its sha256 in ``Upload-Checksum``."""
        digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
        headers = {
            "Upload-Offset": str(offset),
            "Upload-Checksum": f"sha256 {digest}",
            "Content-Type": OFFSET_CONTENT_TYPE,
            "Content-Length": str(len(chunk)),
        }
        body: bytes | AsyncIterator[bytes] = chunk if self._limiter is None else self._paced(chunk)
        async with self._request("PATCH", self.absolute(url), headers=headers, data=body) as reply:
            await _check(reply)
            return Progress(_offset(reply.headers), _receipt(reply.headers))

    async def _paced(self, chunk: bytes) -> AsyncIterator[bytes]:
        assert self._limiter is not None
        view = memoryview(chunk)
        step = self._limiter.piece_bytes
        for start in range(0, len(chunk), step):
            piece = view[start : start + step]
            await self._limiter.take(len(piece))
            yield bytes(piece)

    def _request(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None, data: Any = None
    ) -> _Request:
        all_headers = {"Tus-Resumable": TUS_VERSION, **self._auth, **(headers or {})}
        return _Request(self._session, method, url, all_headers, data)


class _Request:
    """``async with`` one request; connection failures and timeouts become
    :class:`CollectorUnavailableError`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        headers: dict[str, str],
        data: Any,
    ) -> None:
        self._call = session.request(method, url, headers=headers, data=data)
        self._response: aiohttp.ClientResponse | None = None
        self._what = f"{method} {url}"

    async def __aenter__(self) -> aiohttp.ClientResponse:
        try:
            self._response = await self._call
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise CollectorUnavailableError(f"{self._what}: {type(exc).__name__} {exc}") from exc
        return self._response

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            self._response.release()


async def _check(response: aiohttp.ClientResponse) -> None:
    """Raise the error an answer means (nothing for 2xx)."""
    status = response.status
    if status < 400:
        return
    code, message = await _error_of(response)
    if status == 460:
        raise ChecksumMismatchError(message)
    if status == 409 and code == "offset_mismatch":
        raise OffsetMismatchError(_offset_or_none(response.headers))
    if status in (404, 410):
        raise UploadGoneError(f"{status} {code}: {message}")
    if status == 422 and code in ("sha256_mismatch", "size_mismatch"):
        raise UploadCorruptedError(f"{code}: {message}")
    transient = (
        status >= 500
        or status in (401, 408, 423, 429)
        or (status == 403 and code == "unknown_device")  # enrollment may come later
        or (status == 400 and code == "truncated")  # our body was cut short in transit
    )
    if transient:
        raise CollectorUnavailableError(f"{status} {code}: {message}")
    raise UploadRefusedError(status, code, message)


async def _error_of(response: aiohttp.ClientResponse) -> tuple[str, str]:
    """The collector's ``{"error": {"code", "message"}}`` (HEAD answers have no body)."""
    if response.method == "HEAD":
        return "", response.reason or ""
    try:
        body = await asyncio.wait_for(response.json(content_type=None), timeout=10)
        error = body["error"]
        return str(error["code"]), str(error["message"])[:300]
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError):
        return "", response.reason or ""


def _offset_or_none(headers: Mapping[str, str]) -> int | None:
    value = headers.get("Upload-Offset", "")
    return int(value) if value.isdigit() else None


def _offset(headers: Mapping[str, str]) -> int:
    offset = _offset_or_none(headers)
    if offset is None:
        raise CollectorUnavailableError("the answer carries no Upload-Offset")
    return offset


def _receipt(headers: Mapping[str, str]) -> SignedReceipt | None:
    value = headers.get(RECEIPT_HEADER)
    if not value:
        return None
    try:
        return SignedReceipt.model_validate_json(base64.b64decode(value, validate=True))
    except (binascii.Error, ValidationError, ValueError) as exc:
        raise ReceiptRejectedError(
            f"unreadable {RECEIPT_HEADER} ({len(value)} bytes)", "malformed"
        ) from exc
