"""One segment's tus upload, resumed from wherever the collector durably holds it.

``POST`` (its URL is stored in the catalog at once) or, for an upload begun earlier, ``HEAD`` for
the durable offset; then ``PATCH`` in chunks, each with its sha256 in ``Upload-Checksum``, until
the answer carries the receipt. Within one attempt it follows the collector's corrections (a
gone upload starts over, an offset mismatch continues from the collector's offset, a chunk
damaged in transit is sent again); anything else ends the attempt with an error for the uploader
to act on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from edge_agent.recording.catalog import SpoolCatalog
from edge_agent.upload.errors import (
    ChecksumMismatchError,
    CollectorUnavailableError,
    OffsetMismatchError,
    SpoolFileChangedError,
    UploadGoneError,
)
from edge_agent.upload.tus import TusClient
from protocol.recording import SignedManifest, SignedReceipt

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_CHUNK_RETRIES = 3
"""A chunk refused this many times in a row (460) ends the attempt (the link is mangling data)."""
MAX_RESTARTS = 3
"""New uploads within one attempt (404/410 each time) before the attempt gives up."""
SLOWEST_LINK_BYTES_PER_S = 16 * 1024
"""What a ``PATCH`` body is given time for, beyond the request timeout, without a limit."""


@dataclass
class Progress:
    """What the uploader shows of the segment in flight (tests and logs read it)."""

    stream: str
    seq: int
    size: int
    offset: int = 0
    """The collector's durable offset, as last reported."""
    sent: int = 0
    """Bytes sent for this segment in this attempt (re-sent ones included)."""
    resumed_from: int | None = None
    """The ``HEAD`` offset this attempt resumed from, when it was not 0."""


@dataclass
class Transfer:
    client: TusClient
    catalog: SpoolCatalog
    signed: SignedManifest
    upload_url: str | None
    path: Path
    chunk_bytes: int
    timeout_s: float
    bytes_per_s: float | None
    progress: Progress

    async def run(self) -> SignedReceipt:
        """Upload until the collector answers with a receipt (not yet verified)."""
        size = self.progress.size
        url = self.upload_url
        offset: int | None = None
        refused_chunks = restarts = 0
        while True:
            try:
                if url is None:
                    if restarts >= MAX_RESTARTS:
                        raise CollectorUnavailableError("the collector keeps losing new uploads")
                    restarts += 1
                    created = await self._bounded(self.client.create(self.signed))
                    if created.receipt is not None:
                        return created.receipt
                    url = created.url
                    await asyncio.to_thread(self._remember, url)
                    offset = 0
                    log.info(
                        "upload.created stream=%s seq=%d size=%d url=%s",
                        self.progress.stream, self.progress.seq, size, url,
                    )  # fmt: skip
                if offset is None:
                    state = await self._bounded(self.client.head(url))
                    if state.receipt is not None:
                        return state.receipt
                    offset = state.offset
                    if offset > 0:
                        self.progress.resumed_from = offset
                        log.info(
                            "upload.resumed stream=%s seq=%d offset=%d size=%d",
                            self.progress.stream, self.progress.seq, offset, size,
                        )  # fmt: skip
                self.progress.offset = offset
                receipt, offset = await self._patch(url, offset, size)
                if receipt is not None:
                    return receipt
                refused_chunks = 0
            except UploadGoneError as exc:
                log.warning(
                    "upload.gone stream=%s seq=%d error=%s",
                    self.progress.stream, self.progress.seq, exc,
                )  # fmt: skip
                url = offset = None
                await asyncio.to_thread(self._remember, None)
            except OffsetMismatchError as exc:
                log.warning(
                    "upload.offset_mismatch stream=%s seq=%d sent=%s collector=%s",
                    self.progress.stream, self.progress.seq, offset, exc.offset,
                )  # fmt: skip
                offset = exc.offset
            except ChecksumMismatchError:
                refused_chunks += 1
                log.warning(
                    "upload.chunk_refused stream=%s seq=%d offset=%s times=%d",
                    self.progress.stream, self.progress.seq, offset, refused_chunks,
                )  # fmt: skip
                if refused_chunks >= MAX_CHUNK_RETRIES:
                    raise CollectorUnavailableError("chunks keep arriving damaged") from None

    async def _patch(self, url: str, offset: int, size: int) -> tuple[SignedReceipt | None, int]:
        length = min(self.chunk_bytes, size - offset)
        chunk = await asyncio.to_thread(_read, self.path, offset, length)
        if len(chunk) != length:
            raise SpoolFileChangedError(
                f"{self.path} ends at {offset + len(chunk)}, its manifest says {size}"
            )
        rate = min(self.bytes_per_s or SLOWEST_LINK_BYTES_PER_S, SLOWEST_LINK_BYTES_PER_S)
        self.progress.sent += length  # counted when it leaves, whether or not it arrives
        state = await self._bounded(
            self.client.patch(url, offset, chunk), self.timeout_s + length / rate
        )
        self.progress.offset = state.offset
        if state.receipt is None and length == 0:
            raise CollectorUnavailableError(
                "the upload is complete but the collector gave no receipt"
            )
        return state.receipt, state.offset

    def _remember(self, url: str | None) -> None:
        manifest = self.signed.parsed()
        self.catalog.set_upload_url(manifest.stream, manifest.seq, url)

    async def _bounded(self, call: Awaitable[T], seconds: float | None = None) -> T:
        try:
            async with asyncio.timeout(seconds or self.timeout_s):
                return await call
        except TimeoutError as exc:
            raise CollectorUnavailableError("the collector did not answer in time") from exc


def _read(path: Path, offset: int, length: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)
    except FileNotFoundError as exc:
        raise SpoolFileChangedError(f"{path} is gone") from exc
