"""tus uploads without HTTP: create, report the offset, append a PATCH body, terminate, and bring
uploads back after a restart.

The offset of an upload is the size of its partial file, made durable (fdatasync) before a PATCH
is answered; the running sha256 of what it holds lives in memory and is rebuilt by re-hashing the
file after a restart. One PATCH at a time per upload; a second one is answered 423.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from aiohttp import StreamReader

from collector.evidence.completion import Finisher
from collector.evidence.errors import EvidenceError
from collector.evidence.ledger import (
    UploadRow,
    UploadState,
    admit,
    get_upload,
    set_upload_state,
    uploads_in_state,
)
from collector.evidence.metrics import EvidenceMetrics
from collector.evidence.store import ContentStore
from collector.evidence.stream import BufferPool, PartFile, receive
from collector.store.readers import ReadPool
from collector.store.writer import DbWriter
from protocol.clock import Clock
from protocol.durable import hash_file
from protocol.recording import SignedManifest

if TYPE_CHECKING:
    from hashlib import _Hash

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Live:
    """What an upload's partial file durably holds: its size and the sha256 state of it."""

    offset: int
    hasher: _Hash


@dataclass(frozen=True)
class Created:
    upload_id: str
    receipt: str | None
    """Set when the segment is already stored with this manifest (the upload may stop here)."""


@dataclass(frozen=True)
class PatchBody:
    content: StreamReader
    length: int | None
    """``Content-Length``, when the client sent one."""
    checksum: bytes | None
    """The sha256 digest named by ``Upload-Checksum``."""


@dataclass(frozen=True)
class UploadStatus:
    upload: UploadRow
    offset: int
    receipt: str | None = None
    """The receipt, once the upload is complete."""


class UploadManager:
    def __init__(
        self,
        *,
        store: ContentStore,
        writer: DbWriter,
        readers: ReadPool,
        clock: Clock,
        finisher: Finisher,
        metrics: EvidenceMetrics,
        executor: Executor,
    ) -> None:
        self._store = store
        self._writer = writer
        self._readers = readers
        self._clock = clock
        self._finisher = finisher
        self._metrics = metrics
        self._executor = executor
        self._live: dict[str, _Live] = {}
        self._pool = BufferPool()
        self._busy: set[str] = set()

    # --- creation and status ---------------------------------------------------------------------

    async def create(self, signed: SignedManifest, metadata: str) -> Created:
        upload_id = uuid.uuid4().hex
        now = self._clock.now()
        outcome = await self._writer.submit(lambda db: admit(db, upload_id, signed, metadata, now))
        self._finisher.report(outcome.findings)
        if outcome.refusal is not None:
            self._finisher.refuse_creation(signed, outcome.refusal)
        await self._run(self._store.create_part, upload_id)
        self._live[upload_id] = _Live(0, hashlib.sha256())
        self._metrics.uploads_created += 1
        manifest = signed.parsed()
        log.info(
            "upload.created upload=%s device=%s stream=%s seq=%d length=%d",
            upload_id, manifest.device_id, manifest.stream, manifest.seq, manifest.size,
        )  # fmt: skip
        receipt = outcome.receipt
        if manifest.size == 0 and receipt is None:  # nothing to PATCH: complete already
            live = self._live.pop(upload_id)
            receipt = await self._finisher.finish(
                await self._upload(upload_id), live.offset, live.hasher
            )
        return Created(upload_id, receipt)

    async def status(self, upload_id: str) -> UploadStatus:
        """The upload and its durable offset (taken before any PATCH now in progress)."""
        upload = await self._upload(upload_id)
        if upload.state is UploadState.COMPLETE:
            return UploadStatus(upload, upload.length, upload.receipt)
        live = self._live.get(upload_id)
        if upload_id in self._busy and live is not None:
            return UploadStatus(upload, live.offset)
        live = await self._load(upload, remember=upload_id not in self._busy)
        return UploadStatus(upload, live.offset)

    # --- PATCH -----------------------------------------------------------------------------------

    async def append(self, upload_id: str, offset: int, body: PatchBody) -> UploadStatus:
        """Append a PATCH body at ``offset``. Returns the new durable offset and, when that
        completes the upload, the row with its receipt."""
        if upload_id in self._busy:
            self._error("upload_locked")
            raise EvidenceError(423, "upload_locked", "another PATCH to this upload is in progress")
        self._busy.add(upload_id)
        try:
            upload = await self._upload(upload_id)
            if upload.state is UploadState.COMPLETE:
                if offset == upload.length and not body.length:
                    return UploadStatus(upload, upload.length, upload.receipt)
                self._error("offset_mismatch")
                raise EvidenceError(
                    409,
                    "offset_mismatch",
                    "the upload is already complete",
                    {"Upload-Offset": str(upload.length)},
                )
            return await self._append(upload, offset, body)
        finally:
            self._busy.discard(upload_id)

    async def _append(self, upload: UploadRow, offset: int, body: PatchBody) -> UploadStatus:
        live = await self._load(upload)
        if offset != live.offset:
            self._error("offset_mismatch")
            raise EvidenceError(
                409,
                "offset_mismatch",
                f"Upload-Offset is {offset}, but the upload holds {live.offset} bytes",
                {"Upload-Offset": str(live.offset)},
            )
        remaining = upload.length - offset
        if body.length is not None and body.length > remaining:
            self._error("oversize")
            raise EvidenceError(
                413, "oversize", f"{body.length} bytes sent, only {remaining} remain"
            )
        part = await self._run(PartFile, self._store.part_path(upload.upload_id))
        try:
            await self._receive(upload, live, part, body, remaining)
        finally:
            part.close()
        if live.offset < upload.length:
            return UploadStatus(upload, live.offset)
        del self._live[upload.upload_id]
        receipt = await self._finisher.finish(upload, live.offset, live.hasher)
        return UploadStatus(upload, upload.length, receipt)

    async def _receive(
        self, upload: UploadRow, live: _Live, part: PartFile, body: PatchBody, remaining: int
    ) -> None:
        start = live.offset
        checkpoint = live.hasher.copy()
        checked = body.checksum is not None
        # From offset 0 the body's sha256 is the file's: one hash serves both.
        separate = checked and start > 0
        chunk_hasher = hashlib.sha256() if separate else live.hasher
        hashers = [live.hasher, chunk_hasher] if separate else [live.hasher]
        try:
            received = await receive(
                body.content,
                part,
                start,
                hashers,
                remaining,
                pool=self._pool,
                executor=self._executor,
            )
        except asyncio.CancelledError:
            self._live.pop(upload.upload_id, None)  # unsure what was written: re-hash next time
            raise
        except OSError as exc:
            await self._rollback(live, part.fd, start, checkpoint)
            self._error("storage_error")
            log.error("upload.storage_error upload=%s error=%s", upload.upload_id, exc)
            raise EvidenceError(507, "storage_error", f"cannot store the bytes: {exc}") from exc
        short = body.length is not None and received.count < body.length
        if received.overflow:
            await self._rollback(live, part.fd, start, checkpoint)
            self._error("oversize")
            raise EvidenceError(
                413, "oversize", f"the body goes past the {remaining} bytes that remain"
            )
        if checked and (received.error is not None or short):
            await self._rollback(live, part.fd, start, checkpoint)
            self._truncated(upload, received.count, kept=0)
        if checked and chunk_hasher.digest() != body.checksum:
            await self._rollback(live, part.fd, start, checkpoint)
            self._error("checksum_mismatch")
            log.warning("upload.checksum_mismatch upload=%s offset=%d", upload.upload_id, start)
            raise EvidenceError(460, "checksum_mismatch", "Upload-Checksum does not match the body")
        await self._run(os.fdatasync, part.fd)
        live.offset = start + received.count
        self._metrics.upload_patches += 1
        self._metrics.upload_bytes += received.count
        if received.error is not None or short:
            self._truncated(upload, received.count, kept=received.count)

    async def _rollback(self, live: _Live, fd: int, start: int, checkpoint: _Hash) -> None:
        """Forget a PATCH's bytes: cut the file back to where it started, durably."""
        await self._run(os.ftruncate, fd, start)
        await self._run(os.fdatasync, fd)
        live.offset, live.hasher = start, checkpoint

    def _truncated(self, upload: UploadRow, received: int, *, kept: int) -> None:
        self._error("truncated")
        log.warning(
            "upload.truncated upload=%s received=%d kept=%d", upload.upload_id, received, kept
        )
        raise EvidenceError(
            400, "truncated", f"the body ended early; {kept} of its bytes were kept"
        )

    # --- termination, expiry, recovery -----------------------------------------------------------

    async def terminate(self, upload_id: str) -> None:
        if upload_id in self._busy:
            self._error("upload_locked")
            raise EvidenceError(423, "upload_locked", "a PATCH to this upload is in progress")
        upload = await self._upload(upload_id, allow_rejected=True)
        if upload.state is UploadState.COMPLETE:
            raise EvidenceError(
                409, "upload_complete", "a completed upload is evidence and cannot be terminated"
            )
        if upload.state is UploadState.REJECTED:
            return  # nothing of it is kept; its row keeps the reason
        await self._end(upload_id, UploadState.TERMINATED)

    async def expire(self, max_age: timedelta) -> int:
        """Remove unfinished uploads created more than ``max_age`` ago."""
        cutoff = (self._clock.now() - max_age).timestamp()
        ids = await self._readers.run(
            lambda db: [
                row[0]
                for row in db.execute(
                    "SELECT upload_id FROM evidence_uploads WHERE state = ? AND created_ts < ?",
                    (UploadState.RECEIVING.value, cutoff),
                )
            ]
        )
        expired = 0
        for upload_id in ids:
            if upload_id not in self._busy:
                await self._end(upload_id, UploadState.EXPIRED)
                expired += 1
        self._metrics.expired_uploads += expired
        return expired

    async def recover(self) -> None:
        """After a restart: finish uploads whose last byte arrived but that were not recorded
        (their partial file is complete, or already moved into the store)."""
        uploads = await self._readers.run(lambda db: uploads_in_state(db, UploadState.RECEIVING))
        for upload in uploads:
            size = await self._run(_durable_size, self._store.part_path(upload.upload_id))
            stored = self._store.path(upload.sha256)
            try:
                if size is None and await self._run(stored.exists):
                    count, hasher = await self._run(hash_file, stored, None)
                    await self._finisher.finish(upload, count, hasher)
                elif size is not None and size >= upload.length:
                    live = await self._load(upload)
                    del self._live[upload.upload_id]
                    await self._finisher.finish(upload, live.offset, live.hasher)
                else:
                    continue
            except EvidenceError as exc:
                log.warning("upload.recovery_refused upload=%s code=%s", upload.upload_id, exc.code)
            else:
                log.info("upload.recovered upload=%s", upload.upload_id)

    async def _end(self, upload_id: str, state: UploadState) -> None:
        now = self._clock.now()
        await self._writer.submit(lambda db: set_upload_state(db, upload_id, state, now))
        self._live.pop(upload_id, None)
        await self._run(self._store.remove_part, upload_id)
        log.info("upload.ended upload=%s state=%s", upload_id, state.value)

    def close(self) -> None:
        self._pool.close()

    # --- helpers ---------------------------------------------------------------------------------

    async def _upload(self, upload_id: str, *, allow_rejected: bool = False) -> UploadRow:
        try:
            self._store.part_path(upload_id)
        except ValueError:
            upload = None
        else:
            upload = await self._readers.run(lambda db: get_upload(db, upload_id))
        if upload is None or upload.state in (UploadState.TERMINATED, UploadState.EXPIRED):
            self._error("unknown_upload")
            raise EvidenceError(404, "unknown_upload", f"no upload {upload_id!r}")
        if upload.state is UploadState.REJECTED and not allow_rejected:
            self._error("upload_rejected")
            raise EvidenceError(410, "upload_rejected", upload.reason or "rejected")
        return upload

    async def _load(self, upload: UploadRow, *, remember: bool = True) -> _Live:
        """The live state of an upload, re-hashing its file when it is not (or no longer) known,
        as after a restart."""
        live = self._live.get(upload.upload_id)
        path = self._store.part_path(upload.upload_id)
        if live is not None and live.offset == await self._run(_size, path):
            return live  # every PATCH ends with an fdatasync: this size is durable
        size = await self._run(_durable_size, path)
        if size is None:
            log.warning("upload.part_missing upload=%s", upload.upload_id)
            await self._run(self._store.create_part, upload.upload_id)
        count, hasher = await self._run(hash_file, path, upload.length)
        live = _Live(count, hasher)
        if remember:
            self._live[upload.upload_id] = live
        log.info("upload.rehashed upload=%s offset=%d", upload.upload_id, count)
        return live

    def _error(self, code: str) -> None:
        self._metrics.upload_errors[code] += 1

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)


def _size(path: os.PathLike[str]) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def _durable_size(path: os.PathLike[str]) -> int | None:
    """The size of a partial file after making its content durable (``None``: missing)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        os.fdatasync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)
