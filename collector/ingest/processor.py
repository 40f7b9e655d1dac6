"""The ingest logic, run by the DB writer thread inside one transaction per batch.

Per message: topic → device and kind; size, depth, registry and schema checks; then events
(dedup, gaps, acks), status and heartbeats (connection state). Whatever cannot be accepted is
quarantined with a reason and counted: never silently dropped, never an exception out of the loop.

And whatever a message does, it cannot take ingest down: should processing a batch raise anything
but a storage error, the batch is rolled back to its start and processed again message by message,
each under its own savepoint, and a message that raises again is quarantined as
``internal_error`` (its seq settled, so its resends are acknowledged, not retried for ever).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import sqlite3
from collections.abc import Sequence

from pydantic import ValidationError

from collector.ingest.batch import Batch, BatchResult, Chunk, RawMessage, Rejection
from collector.ingest.connectivity import Connectivity
from collector.ingest.events import EventIngest
from collector.ingest.hooks import BatchHook
from collector.ingest.quarantine import (
    INSERT_QUARANTINE,
    INSERT_TAMPER,
    claimed_seq,
    describe_validation_error,
    quarantine,
)
from collector.ingest.runtime import Connection, DeviceRuntime
from collector.ingest.seqtrack import SeqTracker
from collector.metrics import IngestMetrics
from collector.registry import Registry
from collector.store.errors import is_storage_error
from protocol.clock import Clock
from protocol.messages import EventEnvelope, Heartbeat, Status
from protocol.topics import DEVICE_PREFIX, TopicKind, device_topic, is_valid_device_id
from protocol.wire import PayloadError, check_payload

log = logging.getLogger(__name__)

_KINDS = {kind.value: kind for kind in TopicKind}
_EVENT_KINDS = (TopicKind.EVENT, TopicKind.ALARM)
INTERNAL_ERROR = "internal_error"


class DeviceMismatchError(Exception):
    """A payload names another device than its topic: a forgery or a broken agent."""


class IngestProcessor:
    def __init__(
        self,
        db: sqlite3.Connection,
        registry: Registry,
        clock: Clock,
        metrics: IngestMetrics,
        *,
        heartbeat_timeout_factor: float = 3.0,
        clock_skew_limit_ms: float = 2000.0,
        quarantine_cap: int = 100_000,
        hooks: Sequence[BatchHook] = (),
    ) -> None:
        self._db = db
        self.registry = registry
        self._clock = clock
        self.metrics = metrics
        self._quarantine_cap = quarantine_cap
        self._events = EventIngest(db, metrics)
        self._connectivity = Connectivity(
            db,
            metrics,
            timeout_factor=heartbeat_timeout_factor,
            clock_skew_limit_ms=clock_skew_limit_ms,
        )
        self._hooks = list(hooks)
        self.devices: dict[str, DeviceRuntime] = {}

    # --- state ----------------------------------------------------------------------------------

    def load(self) -> None:
        """Rebuild the in-memory state from the database (at start, or after a failed commit)."""
        self.registry.load(self._db)
        now_mono = self._clock.monotonic()
        devices: dict[str, DeviceRuntime] = {}
        rows = self._db.execute(
            "SELECT device_id, connection, connection_since, offline_reason, boot_id, boot_no, "
            "conn_no, acked_seq, heartbeat_interval_s FROM device_state"
        ).fetchall()
        for device_id, conn, since, reason, boot_id, boot_no, conn_no, acked, interval in rows:
            connection = Connection(conn)
            devices[device_id] = DeviceRuntime(
                device_id,
                connection=connection,
                connection_since=since,
                offline_reason=reason,
                order_key=(boot_no or 0, conn_no or 0, 0 if connection is Connection.ONLINE else 1),
                boot_id=boot_id,
                tracker=SeqTracker(acked),
                acked_stored=acked,
                # A full heartbeat period of grace after a collector restart, for everyone.
                last_heartbeat_mono=now_mono,
                heartbeat_interval_s=interval,
            )
        for table in ("events", "quarantine"):
            # Device by device, a range of the (device_id, seq) index: a plain JOIN is planned
            # as a scan of every row ever stored, and this runs after every failed commit too.
            above = self._db.execute(
                f"SELECT s.device_id, t.seq FROM device_state s CROSS JOIN {table} t "  # noqa: S608
                "ON t.device_id = s.device_id AND t.seq > s.acked_seq ORDER BY t.seq"
            ).fetchall()
            for device_id, seq in above:
                devices[device_id].tracker.commit(seq)
        self.devices = devices
        for hook in self._hooks:
            hook.load()

    def add_device(self, device_id: str) -> DeviceRuntime:
        """Make a newly enrolled device known to ingest (inside the enrollment transaction)."""
        runtime = self.devices.get(device_id)
        if runtime is None:
            runtime = DeviceRuntime(device_id, last_heartbeat_mono=self._clock.monotonic())
            self.devices[device_id] = runtime
        return runtime

    # --- batches --------------------------------------------------------------------------------

    def process(self, chunks: Sequence[Chunk]) -> BatchResult:
        """Process a batch inside the caller's transaction. Raises only storage errors (the
        caller rolls back and retries); any other failure is contained (module docstring)."""
        self._db.execute("SAVEPOINT ingest_batch")
        counted = copy.deepcopy(self.metrics)
        try:
            result = self._process(chunks)
        except Exception as exc:
            if is_storage_error(exc):
                raise
            log.exception("ingest.batch_failed messages=%d", sum(len(c.messages) for c in chunks))
            self._undo("ingest_batch", counted)
            return self._process_one_by_one(chunks)
        self._db.execute("RELEASE ingest_batch")
        return result

    def _undo(self, savepoint: str, counted: IngestMetrics) -> None:
        """Back to ``savepoint``: the in-memory state rebuilt to match the database, and the
        counters as they were (in place: others hold the same metrics object)."""
        self._db.execute(f"ROLLBACK TO {savepoint}")
        self._db.execute(f"RELEASE {savepoint}")
        vars(self.metrics).update(vars(counted))
        self.load()

    def _process_one_by_one(self, chunks: Sequence[Chunk]) -> BatchResult:
        merged = BatchResult()
        for chunk in chunks:
            for message in chunk.messages:
                single = dataclasses.replace(chunk, messages=[message])
                self._db.execute("SAVEPOINT ingest_message")
                counted = copy.deepcopy(self.metrics)
                try:
                    result = self._process([single])
                except Exception as exc:
                    if is_storage_error(exc):
                        raise
                    self._undo("ingest_message", counted)
                    result = self._quarantine_crash(message, single, exc)
                else:
                    self._db.execute("RELEASE ingest_message")
                _merge(merged, result)
        return merged

    def _quarantine_crash(self, message: RawMessage, chunk: Chunk, exc: Exception) -> BatchResult:
        """A message that raised while being processed: quarantined, never processed again."""
        log.error(
            "ingest.message_crashed topic=%s error=%r", message.topic[:200], exc, exc_info=exc
        )
        batch = Batch()
        device_id, _, kind_name = message.topic.removeprefix(DEVICE_PREFIX).partition("/")
        runtime = self.devices.get(device_id) if message.topic.startswith(DEVICE_PREFIX) else None
        kind = _KINDS.get(kind_name) if message.topic.startswith(DEVICE_PREFIX) else None
        self.metrics.messages_in[kind_name if kind else "other"] += 1
        event_topic = kind in _EVENT_KINDS
        seq = claimed_seq(message.payload, device_id) if runtime and event_topic else None
        detail = f"{type(exc).__name__}: {exc}"
        known = device_id if runtime is not None else None
        rejection = Rejection(message.topic, known, INTERNAL_ERROR, detail, message.payload, seq)
        self._reject(batch, chunk, rejection)
        if runtime is not None:
            self._settle(runtime, seq, batch)
        batch.result.messages = 1
        return self._finish(batch)

    def _process(self, chunks: Sequence[Chunk]) -> BatchResult:
        batch = Batch()
        for chunk in chunks:
            for message in chunk.messages:
                self._one(message, chunk, batch)
            batch.result.messages += len(chunk.messages)
        return self._finish(batch)

    def _finish(self, batch: Batch) -> BatchResult:
        for device_id in list(batch.heartbeats):
            self._apply_heartbeat(device_id, batch)
        self._events.write(batch)
        if batch.quarantine_rows:
            self._db.executemany(INSERT_QUARANTINE, batch.quarantine_rows)
        if batch.tamper_rows:
            self._db.executemany(INSERT_TAMPER, batch.tamper_rows)
        batch.result.acks = self._events.acks(batch, self.devices, self._clock.now())
        for hook in self._hooks:
            hook.after_batch(batch.result)
        return batch.result

    def _one(self, message: RawMessage, chunk: Chunk, batch: Batch) -> None:
        topic = message.topic
        payload = message.payload
        device_id, _, kind_name = topic.removeprefix(DEVICE_PREFIX).partition("/")
        kind = _KINDS.get(kind_name) if topic.startswith(DEVICE_PREFIX) else None
        self.metrics.messages_in[kind_name if kind else "other"] += 1
        # Enrolled devices have runtimes (and valid ids): one lookup settles both checks.
        runtime = self.devices.get(device_id) if kind is not None else None
        if kind is None or runtime is None:
            if kind is None or not is_valid_device_id(device_id):
                rejection = Rejection(topic, None, "bad_topic", "not a device topic", payload)
            else:
                detail = f"device {device_id!r} is not enrolled"
                rejection = Rejection(topic, device_id, "unknown_device", detail, payload)
            self._reject(batch, chunk, rejection)
            return
        try:
            check_payload(payload)  # size and nesting, before any parser sees it
        except PayloadError as exc:
            self._reject(batch, chunk, Rejection(topic, device_id, exc.reason, str(exc), payload))
            return
        if kind is TopicKind.HEARTBEAT:
            self._hold_heartbeat(runtime, message, chunk, batch)
            return
        if kind is TopicKind.STATUS:
            self._apply_heartbeat(device_id, batch)  # what came before the status, first
        self._accept(runtime, kind, message, chunk, batch)

    def _hold_heartbeat(
        self, runtime: DeviceRuntime, message: RawMessage, chunk: Chunk, batch: Batch
    ) -> None:
        """Heartbeats are state: of a device's heartbeats in one batch only the newest is
        validated and applied. An earlier one is counted once it is plainly that device's
        heartbeat in canonical form (the agent's encoding); anything else gets full validation."""
        earlier = batch.heartbeats.get(runtime.device_id)
        batch.heartbeats[runtime.device_id] = (message, chunk)
        if earlier is None:
            return
        old_message, old_chunk = earlier
        if old_message.payload.startswith(runtime.heartbeat_prefix):
            runtime.heartbeats_pending += 1
            runtime.last_seen_at = old_chunk.received_at
            runtime.dirty = True
            self.metrics.heartbeats_folded += 1
        else:
            self._accept(runtime, TopicKind.HEARTBEAT, old_message, old_chunk, batch)

    def _apply_heartbeat(self, device_id: str, batch: Batch) -> None:
        held = batch.heartbeats.pop(device_id, None)
        if held is not None:
            message, chunk = held
            self._accept(self.devices[device_id], TopicKind.HEARTBEAT, message, chunk, batch)

    def _accept(
        self,
        runtime: DeviceRuntime,
        kind: TopicKind,
        message: RawMessage,
        chunk: Chunk,
        batch: Batch,
    ) -> None:
        topic, payload, device_id = message.topic, message.payload, runtime.device_id
        try:
            self._dispatch(runtime, kind, payload, chunk, batch)
        except ValidationError as exc:
            reason, detail = describe_validation_error(exc)
            seq = claimed_seq(payload, device_id) if kind in _EVENT_KINDS else None
            self._reject(batch, chunk, Rejection(topic, device_id, reason, detail, payload, seq))
            self._settle(runtime, seq, batch)
        except DeviceMismatchError as exc:
            self._reject(
                batch, chunk, Rejection(topic, device_id, "device_mismatch", str(exc), payload)
            )

    def _settle(self, runtime: DeviceRuntime, seq: int | None, batch: Batch) -> None:
        """The device's own event, kept in quarantine: settle its seq, so one unreadable event
        does not hold back the acknowledgement of everything after it."""
        if seq is not None and not runtime.tracker.has(seq):
            runtime.tracker.commit(seq)
            batch.ack_devices[runtime.device_id].add(seq)

    def _dispatch(
        self, runtime: DeviceRuntime, kind: TopicKind, payload: bytes, chunk: Chunk, batch: Batch
    ) -> None:
        if kind is TopicKind.HEARTBEAT:
            heartbeat = Heartbeat.model_validate_json(payload)
            _check_device(runtime, heartbeat.device_id)
            self._connectivity.heartbeat(runtime, heartbeat, payload, chunk, batch)
        elif kind is TopicKind.EVENT or kind is TopicKind.ALARM:
            event = EventEnvelope.model_validate_json(payload)
            _check_device(runtime, event.device_id)
            runtime.last_seen_at = chunk.received_at
            runtime.dirty = True
            self._events.accept(runtime, event, payload, chunk, batch)
        elif kind is TopicKind.STATUS:
            status = Status.model_validate_json(payload)
            _check_device(runtime, status.device_id)
            self._connectivity.status(runtime, status, chunk, batch)
        else:
            detail = f"devices do not publish on …/{kind.value}"
            topic = device_topic(runtime.device_id, kind)
            rejection = Rejection(topic, runtime.device_id, "wrong_direction", detail, payload)
            self._reject(batch, chunk, rejection)

    def _reject(self, batch: Batch, chunk: Chunk, rejection: Rejection) -> None:
        quarantine(batch, chunk, rejection, self.metrics)

    # --- the collector's own view -----------------------------------------------------------------

    def lost_sight(self) -> None:
        """The ingest session is down: stop judging devices by their silence (any thread)."""
        self._connectivity.blind = True

    def regained_sight(self) -> None:
        """The ingest session is back (writer thread): a fresh grace period for everyone."""
        self._connectivity.rebase(self.devices, self._clock.monotonic())
        self._connectivity.blind = False
        for hook in self._hooks:
            regained = getattr(hook, "regained_sight", None)
            if regained is not None:
                regained()

    # --- periodic -------------------------------------------------------------------------------

    def tick(self, seen_until: float | None = None) -> BatchResult:
        """Flush live state and mark silent devices offline (inside the writer's transaction).
        ``seen_until``: the receive time of the oldest message still waiting for the writer."""
        batch = Batch()
        self.metrics.heartbeats_committed += self._connectivity.flush(self.devices)
        now_mono = self._clock.monotonic()
        horizon = now_mono if seen_until is None else min(now_mono, seen_until)
        self._connectivity.sweep(self.devices, horizon, self._clock.now().isoformat(), batch)
        self._cap_quarantine()
        for hook in self._hooks:
            hook.after_batch(batch.result)
            hook.tick(batch.result)
        return batch.result

    def _cap_quarantine(self) -> None:
        row = self._db.execute("SELECT MAX(id) FROM quarantine").fetchone()
        if row and row[0] and row[0] > self._quarantine_cap:
            self._db.execute(
                "DELETE FROM quarantine WHERE id <= ?", (row[0] - self._quarantine_cap,)
            )


def _merge(into: BatchResult, result: BatchResult) -> None:
    into.acks += result.acks
    into.status_changes += result.status_changes
    into.events += result.events
    into.alerts += result.alerts
    into.facts += result.facts
    into.messages += result.messages


def _check_device(runtime: DeviceRuntime, claimed: str) -> None:
    if claimed != runtime.device_id:
        raise DeviceMismatchError(
            f"payload claims device {claimed!r} on the topic of {runtime.device_id!r}"
        )
