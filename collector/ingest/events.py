"""Events and alarms: dedup on ``(device_id, seq)``, conflicts, gaps, rows and acks."""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime

from collector.ingest.batch import Batch, Chunk, CommittedEvent, Rejection
from collector.ingest.quarantine import quarantine
from collector.ingest.runtime import DeviceRuntime
from collector.metrics import IngestMetrics
from protocol.messages import MAX_ACK_EXTRA, Ack, EventEnvelope
from protocol.topics import TopicKind, device_topic

log = logging.getLogger(__name__)

INSERT_EVENTS = (
    "INSERT INTO events (device_id, seq, boot_id, type, alarm, at, mono, clock_synced, "
    "received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_ACKED = "UPDATE device_state SET acked_seq = ? WHERE device_id = ?"


class EventIngest:
    def __init__(self, db: sqlite3.Connection, metrics: IngestMetrics) -> None:
        self._db = db
        self._metrics = metrics

    def accept(
        self,
        runtime: DeviceRuntime,
        event: EventEnvelope,
        payload: bytes,
        chunk: Chunk,
        batch: Batch,
    ) -> None:
        device_id = runtime.device_id
        tracker = runtime.tracker
        if tracker.has(event.seq):
            stored = self._stored(device_id, event.seq, batch)
            if stored is not None:
                self._again(
                    runtime, event, stored=stored, payload=payload, chunk=chunk, batch=batch
                )
                return
            # Settled only through quarantine (an unreadable copy): keep this readable one.
        elif tracker.commit(event.seq):
            self._metrics.gaps_detected += 1
            log.warning(
                "ingest.seq_gap device=%s seq=%d acked=%d", device_id, event.seq, tracker.upto
            )
        body = event.body
        boot_id = str(event.boot_id)
        body_json = body.model_dump_json()
        batch.pending[device_id, event.seq] = (boot_id, body_json)
        batch.event_rows.append(
            (
                device_id,
                event.seq,
                boot_id,
                body.type,
                int(event.is_alarm),
                event.at.isoformat(),
                event.mono,
                int(event.clock_synced),
                chunk.received_at,
                body_json,
            )
        )
        batch.ack_devices[device_id].add(event.seq)
        committed = CommittedEvent(
            device_id, event.seq, body.type, event.is_alarm, chunk.received_at, body_json
        )
        batch.result.events.append(committed)
        batch.result.facts.append(committed)

    def _stored(self, device_id: str, seq: int, batch: Batch) -> tuple[str, str] | None:
        """(boot id, body JSON) already stored for this seq, in this batch or before."""
        stored = batch.pending.get((device_id, seq))
        if stored is None:
            row = self._db.execute(
                "SELECT boot_id, body FROM events WHERE device_id = ? AND seq = ?", (device_id, seq)
            ).fetchone()
            stored = (row[0], row[1]) if row else None
        return stored

    def _again(
        self,
        runtime: DeviceRuntime,
        event: EventEnvelope,
        *,
        stored: tuple[str, str],
        payload: bytes,
        chunk: Chunk,
        batch: Batch,
    ) -> None:
        """Same seq again: a no-op if it is the same event (ack it again), a conflict if not."""
        device_id = runtime.device_id
        if stored == (str(event.boot_id), event.body.model_dump_json()):
            self._metrics.duplicates += 1
            batch.ack_devices[device_id].add(event.seq)
            return
        self._metrics.conflicts += 1
        rejection = Rejection(
            topic=device_topic(device_id, TopicKind.EVENT),
            device_id=device_id,
            reason="seq_conflict",
            detail=f"seq {event.seq} is already stored with different content",
            payload=payload,
            seq=event.seq,
        )
        quarantine(batch, chunk, rejection, self._metrics)

    def write(self, batch: Batch) -> None:
        if batch.event_rows:
            self._db.executemany(INSERT_EVENTS, batch.event_rows)
            self._metrics.events_committed += len(batch.event_rows)

    def acks(self, batch: Batch, devices: dict[str, DeviceRuntime], now: datetime) -> list[Ack]:
        """Persist each touched device's contiguous mark and build the acks to publish after the
        commit: ``upto`` plus, in ``also``, what this batch settled above a gap."""
        acks = []
        marks = []
        for device_id, seqs in batch.ack_devices.items():
            runtime = devices[device_id]
            tracker = runtime.tracker
            if tracker.upto != runtime.acked_stored:
                # Only a moved mark is written: a resent duplicate rewrites no row.
                marks.append((tracker.upto, device_id))
                runtime.acked_stored = tracker.upto
            above = sorted(seq for seq in seqs if seq > tracker.upto)
            for start in range(0, max(len(above), 1), MAX_ACK_EXTRA):
                acks.append(
                    Ack(
                        device_id=device_id,
                        upto=tracker.upto,
                        also=tuple(above[start : start + MAX_ACK_EXTRA]),
                        at=now,
                    )
                )
        self._db.executemany(UPDATE_ACKED, marks)
        return acks
