"""The end of an upload: verify it, move it into the store, record it, issue the receipt.

In this order, so a receipt always means durable, verified evidence: the whole-file sha256 is
compared with the manifest; a writer job checks enrollment, key, signature, conflicts and chain;
the (already fsynced) file is renamed into the content-addressed store and both directories are
fsynced; a second writer job records the segment and signs the receipt. A refusal keeps nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, NoReturn, TypeVar

from collector.evidence.errors import EvidenceError
from collector.evidence.hooks import TamperFinding, TamperHooks
from collector.evidence.keys import CollectorKey
from collector.evidence.ledger import JobOutcome, UploadRow, precheck, record, reject, sha256_in_use
from collector.evidence.metrics import EvidenceMetrics
from collector.evidence.store import ContentStore
from collector.evidence.verify import Refusal
from collector.store.writer import DbWriter
from protocol.clock import Clock
from protocol.recording import SignedManifest

if TYPE_CHECKING:
    from hashlib import _Hash

log = logging.getLogger(__name__)

T = TypeVar("T")


class Finisher:
    def __init__(
        self,
        *,
        store: ContentStore,
        writer: DbWriter,
        clock: Clock,
        key: CollectorKey,
        metrics: EvidenceMetrics,
        hooks: TamperHooks,
        executor: Executor,
        store_lock: asyncio.Lock,
    ) -> None:
        self._store = store
        self._writer = writer
        self._clock = clock
        self._key = key
        self._metrics = metrics
        self._hooks = hooks
        self._executor = executor
        self._store_lock = store_lock

    async def finish(self, upload: UploadRow, size: int, hasher: _Hash) -> str:
        """Turn a complete, fsynced upload into evidence; return the receipt (SignedReceipt JSON).
        Raises :class:`EvidenceError` when it cannot be evidence (and then keeps nothing)."""
        manifest = upload.manifest
        if size != manifest.size:
            await self._refuse(
                upload,
                422,
                "size_mismatch",
                f"received {size} bytes, the manifest says {manifest.size}",
            )
        digest = hasher.hexdigest()
        if digest != manifest.sha256:
            await self._refuse(
                upload,
                422,
                "sha256_mismatch",
                f"the received bytes have sha256 {digest}, the manifest says {manifest.sha256}",
            )
        now = self._clock.now()
        outcome = await self._writer.submit(lambda db: precheck(db, upload, now))
        self.report(outcome.findings)
        if outcome.receipt is not None:
            await self._run(self._store.remove_part, upload.upload_id)
            return self._duplicate(upload, outcome.receipt)
        if outcome.refusal is not None:
            await self._discard(upload, outcome)
        async with self._store_lock:
            await self._run(self._store.commit, upload.upload_id, manifest.sha256)
            location = self._store.location(manifest.sha256)
            now = self._clock.now()
            outcome = await self._writer.submit(
                lambda db: record(db, upload, now, self._key, location)
            )
            self.report(outcome.findings)
            if outcome.refusal is not None:  # another upload won a race and differs
                if not await self._writer.submit(lambda db: sha256_in_use(db, manifest.sha256)):
                    await self._run(self._store.remove_content, manifest.sha256)
                await self._discard(upload, outcome)
        assert outcome.receipt is not None
        if outcome.duplicate:
            return self._duplicate(upload, outcome.receipt)
        self._metrics.stored += 1
        self._metrics.stored_bytes += manifest.size
        log.info(
            "evidence.stored device=%s stream=%s seq=%d size=%d sha256=%s upload=%s",
            manifest.device_id, manifest.stream, manifest.seq, manifest.size, manifest.sha256,
            upload.upload_id,
        )  # fmt: skip
        return outcome.receipt

    def _duplicate(self, upload: UploadRow, receipt: str) -> str:
        self._metrics.duplicates += 1
        log.info(
            "evidence.duplicate device=%s stream=%s seq=%d upload=%s",
            upload.device_id, upload.stream, upload.seq, upload.upload_id,
        )  # fmt: skip
        return receipt

    async def _refuse(self, upload: UploadRow, status: int, code: str, message: str) -> NoReturn:
        now = self._clock.now()
        await self._writer.submit(lambda db: reject(db, upload.upload_id, code, message, now))
        await self._fail(upload, EvidenceError(status, code, message))

    async def _discard(self, upload: UploadRow, outcome: JobOutcome) -> NoReturn:
        refusal = outcome.refusal
        assert refusal is not None
        if refusal.tamper is not None:
            self._metrics.tamper[refusal.tamper.value] += 1
            self._hooks.fire(
                TamperFinding(
                    upload.device_id, upload.stream, upload.seq, refusal.tamper, refusal.message
                )
            )
        await self._fail(upload, EvidenceError(refusal.status, refusal.code, refusal.message))

    async def _fail(self, upload: UploadRow, error: EvidenceError) -> NoReturn:
        await self._run(self._store.remove_part, upload.upload_id)
        self._metrics.rejected[error.code] += 1
        log.warning(
            "evidence.rejected device=%s stream=%s seq=%d upload=%s code=%s detail=%s",
            upload.device_id, upload.stream, upload.seq, upload.upload_id, error.code,
            error.message,
        )  # fmt: skip
        raise error

    def refuse_creation(self, signed: SignedManifest, refusal: Refusal) -> NoReturn:
        """Count, log and raise a refusal at POST (nothing was received, nothing to remove)."""
        manifest = signed.parsed()
        if refusal.tamper is not None:
            self._tamper(
                TamperFinding(
                    manifest.device_id,
                    manifest.stream,
                    manifest.seq,
                    refusal.tamper,
                    refusal.message,
                )
            )
        self._metrics.rejected[refusal.code] += 1
        log.warning(
            "evidence.refused device=%s stream=%s seq=%d code=%s detail=%s",
            manifest.device_id, manifest.stream, manifest.seq, refusal.code, refusal.message,
        )  # fmt: skip
        raise EvidenceError(refusal.status, refusal.code, refusal.message)

    def report(self, findings: list[TamperFinding]) -> None:
        for finding in findings:
            self._tamper(finding)

    def _tamper(self, finding: TamperFinding) -> None:
        self._metrics.tamper[finding.kind.value] += 1
        self._hooks.fire(finding)

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
