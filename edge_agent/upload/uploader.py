"""The uploader: works through the spool until every segment has a verified receipt.

One segment at a time, alarm-related first, then in the order they were recorded
(``SpoolCatalog.unreceipted``). Before a segment's first upload attempt the spooled file is
hashed again: a file that no longer matches its manifest is marked ``corrupt`` and reported as
``segment.corrupt`` (an alarm), never uploaded as good. Failures back off exponentially with
jitter on the injected clock (a collector that comes back online cuts the wait short: ``poke``).
What the collector refuses for good (key problems, a conflicting manifest, a broken chain) is
logged loudly, counted and left in the spool; it is retried once after the agent restarts. The
uploader never deletes anything: that is the disk policy's job, and only after a receipt.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from edge_agent.recording.catalog import SegmentState, SpoolCatalog, SpooledSegment
from edge_agent.recording.errors import SpoolError
from edge_agent.upload.errors import (
    KeyPinError,
    ReceiptRejectedError,
    SpoolFileChangedError,
    UploadCorruptedError,
    UploadError,
    UploadRefusedError,
)
from edge_agent.upload.keypin import CollectorKeyPin
from edge_agent.upload.pacing import RateLimiter
from edge_agent.upload.receipts import verify_receipt
from edge_agent.upload.transfer import Progress, Transfer
from edge_agent.upload.tus import TusClient
from protocol.backoff import Backoff
from protocol.clock import Clock, wait_event
from protocol.durable import sha256_file
from protocol.events import EventBodyType, SegmentCorrupt
from protocol.recording import SignedManifest

log = logging.getLogger(__name__)

Emit = Callable[[EventBodyType], object]
SegmentKey = tuple[str, int]


@dataclass(frozen=True)
class UploaderSettings:
    collector_url: str
    chunk_bytes: int = 1024 * 1024
    bytes_per_s: float | None = None
    """The bandwidth limit; ``None``: as fast as the link goes."""
    token: str | None = None
    request_timeout_s: float = 30.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 60.0
    idle_poll_s: float = 1.0
    """With nothing to upload, look at the catalog again this often."""


@dataclass
class UploadCounters:
    receipted: int = 0
    bytes_sent: int = 0
    resumed: int = 0
    """Attempts that continued an upload from a ``HEAD`` offset above 0."""
    corrupt: int = 0
    receipts_rejected: int = 0
    failures: int = 0
    """Attempts ended by an error that is retried (collector unavailable, …)."""
    refused: Counter[str] = field(default_factory=Counter)
    """Segments the collector refused for good, by its error code."""
    last_receipt_at: datetime | None = None


class Uploader:
    def __init__(
        self,
        catalog: SpoolCatalog,
        settings: UploaderSettings,
        *,
        clock: Clock,
        emit: Emit,
        key_pin: CollectorKeyPin,
        on_receipted: Callable[[], None] = lambda: None,
        rng: random.Random | None = None,
    ) -> None:
        self._catalog = catalog
        self.settings = settings
        self._clock = clock
        self._emit = emit
        self._pin = key_pin
        self._on_receipted = on_receipted
        self._backoff = Backoff(
            initial=settings.retry_initial_s,
            maximum=settings.retry_max_s,
            rng=rng or random.Random(),
        )
        self._wake = asyncio.Event()
        self._checked: set[SegmentKey] = set()
        self.blocked: dict[SegmentKey, str] = {}
        """Segments not retried until the next start, with why."""
        self.counters = UploadCounters()
        self.current: Progress | None = None

    def poke(self) -> None:
        """Look again now (the collector is back online, a segment is waiting)."""
        self._wake.set()

    async def run(self) -> None:
        settings = self.settings
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=settings.request_timeout_s,
            sock_read=settings.request_timeout_s,
        )
        limiter = (
            None if settings.bytes_per_s is None else RateLimiter(settings.bytes_per_s, self._clock)
        )
        async with aiohttp.ClientSession(timeout=timeout) as session:
            client = TusClient(
                session, settings.collector_url, token=settings.token, limiter=limiter
            )
            log.info(
                "upload.started collector=%s bytes_per_s=%s",
                settings.collector_url,
                settings.bytes_per_s,
            )
            while True:
                if await self._attempt(client):
                    self._backoff.reset()
                    continue
                await wait_event(self._wake, self._clock, settings.idle_poll_s)
                self._wake.clear()

    async def _attempt(self, client: TusClient) -> bool:
        """One step; ``True`` when a segment was dealt with (look for the next one at once)."""
        try:
            return await self.step(client)
        except (UploadError, SpoolError, OSError) as exc:
            level = logging.ERROR if isinstance(exc, KeyPinError | SpoolError) else logging.WARNING
            self._retry_log(level, exc)
        except Exception as exc:  # a bug must not end uploading for good (nor crash the agent)
            log.exception("upload.unexpected_error")
            self._retry_log(logging.ERROR, exc)
        self.counters.failures += 1
        await wait_event(self._wake, self._clock, self._backoff.next_delay())
        self._wake.clear()
        return False

    def _retry_log(self, level: int, exc: BaseException) -> None:
        log.log(
            level,
            "upload.retry_later attempt=%d error=%s: %s",
            self._backoff.attempt + 1,
            type(exc).__name__,
            exc,
        )

    async def step(self, client: TusClient) -> bool:
        """Upload the next segment that needs it; ``False`` when none does."""
        segment = await self._next()
        if segment is None:
            return False
        key = (segment.stream, segment.seq)
        signed = segment.manifest
        if signed is None:  # announced segments always have one; never guess
            self._block(key, "no_manifest", "the segment has no signed manifest")
            return True
        collector_key = await self._pin.get(client.collector_key)
        if key not in self._checked:
            if not await self._intact(segment):
                return True
            self._checked.add(key)
        await self._upload(client, segment, signed, collector_key)
        return True

    async def _upload(
        self,
        client: TusClient,
        segment: SpooledSegment,
        signed: SignedManifest,
        collector_key: str,
    ) -> None:
        key = (segment.stream, segment.seq)
        progress = Progress(segment.stream, segment.seq, signed.parsed().size)
        self.current = progress
        transfer = Transfer(
            client=client,
            catalog=self._catalog,
            signed=signed,
            upload_url=segment.upload_url,
            path=self._catalog.file_path(segment),
            chunk_bytes=self.settings.chunk_bytes,
            timeout_s=self.settings.request_timeout_s,
            bytes_per_s=self.settings.bytes_per_s,
            progress=progress,
        )
        try:
            signed_receipt = await transfer.run()
            receipt = verify_receipt(
                signed_receipt, collector_key_b64=collector_key, manifest=signed
            )
        except (UploadCorruptedError, SpoolFileChangedError) as exc:
            await self._mismatch(segment, exc)
            return
        except UploadRefusedError as exc:
            self.counters.refused[exc.code or str(exc.status)] += 1
            self._block(key, exc.code or str(exc.status), str(exc))
            return
        except ReceiptRejectedError as exc:
            self.counters.receipts_rejected += 1
            self._block(key, f"receipt_{exc.reason}", str(exc))
            if segment.state is SegmentState.ANNOUNCED:
                await asyncio.to_thread(self._catalog.mark_uploaded, *key)
            return
        finally:
            self.current = None
            self.counters.bytes_sent += progress.sent
            if progress.resumed_from:
                self.counters.resumed += 1
        await asyncio.to_thread(
            self._catalog.mark_receipted, *key, signed_receipt.model_dump_json()
        )
        self._checked.discard(key)
        self.counters.receipted += 1
        self.counters.last_receipt_at = self._clock.now()
        log.info(
            "upload.receipted stream=%s seq=%d size=%d sent=%d resumed_from=%s stored_at=%s",
            segment.stream, segment.seq, receipt.size, progress.sent, progress.resumed_from,
            receipt.stored_at.isoformat(),
        )  # fmt: skip
        self._on_receipted()

    async def _next(self) -> SpooledSegment | None:
        rows = await asyncio.to_thread(self._catalog.unreceipted, len(self.blocked) + 1)
        return next((s for s in rows if (s.stream, s.seq) not in self.blocked), None)

    async def _intact(self, segment: SpooledSegment) -> bool:
        """Hash the spooled file again; a mismatch marks it corrupt (and reports it)."""
        assert segment.manifest is not None
        manifest = segment.manifest.parsed()
        path = self._catalog.file_path(segment)
        try:
            size, sha256 = await asyncio.to_thread(sha256_file, path)
        except FileNotFoundError:
            size, sha256 = -1, None
        if (size, sha256) == (manifest.size, manifest.sha256):
            return True
        self.counters.corrupt += 1
        log.error(
            "upload.segment_corrupt stream=%s seq=%d path=%s size=%d expected_size=%d "
            "sha256=%s expected_sha256=%s",
            segment.stream, segment.seq, path, size, manifest.size, sha256, manifest.sha256,
        )  # fmt: skip
        # Reported before the state changes: a crash in between reports it again, never not.
        self._emit(
            SegmentCorrupt(
                stream=segment.stream,
                seq=segment.seq,
                expected_sha256=manifest.sha256,
                actual_sha256=sha256,
            )
        )
        await asyncio.to_thread(self._catalog.mark_corrupt, segment.stream, segment.seq)
        self._checked.discard((segment.stream, segment.seq))
        return False

    async def _mismatch(self, segment: SpooledSegment, exc: UploadError) -> None:
        """The collector's copy (or the file's size) does not match the manifest: if the spooled
        file is still good, the bytes were damaged on the way; start a new upload."""
        if not await self._intact(segment):
            return
        log.warning(
            "upload.restarting stream=%s seq=%d reason=%s", segment.stream, segment.seq, exc
        )
        await asyncio.to_thread(self._catalog.set_upload_url, segment.stream, segment.seq, None)
        raise exc  # back off before the new upload

    def _block(self, key: SegmentKey, code: str, detail: str) -> None:
        self.blocked[key] = code
        log.error(
            "upload.segment_refused stream=%s seq=%d code=%s detail=%s "
            "(kept in the spool; retried after a restart)",
            key[0], key[1], code, detail,
        )  # fmt: skip
