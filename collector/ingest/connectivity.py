"""Device connection state from status messages and heartbeat freshness.

- ``online`` / ``stopped`` / ``offline`` come from the retained status topic, ordered by boot and
  connection numbers, so a late Last Will never overrides a newer ``online``.
- A device promises (``keepalive_s`` in its ``online`` status) a heartbeat at least once per
  keepalive: after 1.5 x keepalive of silence it is ``offline``, as MQTT's own rule would have
  it. The broker's Last Will is not enough for that bound: Mosquitto 2.0 checks keepalives only
  every 5-6 s, so its Will comes up to 6 s late. A device that does not say its keepalive is
  judged after ``timeout_factor`` heartbeat intervals instead.
- A heartbeat received now means the device is alive now: it brings a device back ``online``.
- Heartbeats are folded into memory and flushed once per tick, so their cost does not grow with
  the number of messages.
"""

from __future__ import annotations

import logging
import sqlite3

from collector.ingest.batch import Batch, Chunk
from collector.ingest.runtime import (
    ComponentReading,
    ComponentReport,
    Connection,
    DeviceRuntime,
    OfflineReason,
    StatusChange,
    connection_for,
    status_is_newer,
)
from collector.metrics import IngestMetrics
from protocol.messages import DeviceState, Heartbeat, Status

log = logging.getLogger(__name__)

KEEPALIVE_GRACE = 1.5
"""MQTT's grace: silence longer than 1.5 x keepalive means the device is gone."""

FLUSH_DEVICE_STATE = (
    "UPDATE device_state SET last_seen_at = COALESCE(?, last_seen_at), "
    "last_heartbeat_at = COALESCE(?, last_heartbeat_at), "
    "heartbeat_interval_s = COALESCE(?, heartbeat_interval_s), "
    "heartbeats = heartbeats + ?, last_heartbeat = COALESCE(?, last_heartbeat), "
    "clock_skew_ms = COALESCE(?, clock_skew_ms) WHERE device_id = ?"
)


class Connectivity:
    def __init__(
        self,
        db: sqlite3.Connection,
        metrics: IngestMetrics,
        *,
        timeout_factor: float = 3.0,
        clock_skew_limit_ms: float = 2000.0,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._timeout_factor = timeout_factor
        self._skew_limit = clock_skew_limit_ms
        self.blind = False
        """Set while the collector itself is cut off from the broker: silence proves nothing."""

    def heartbeat(
        self,
        runtime: DeviceRuntime,
        heartbeat: Heartbeat,
        payload: bytes,
        chunk: Chunk,
        batch: Batch,
    ) -> None:
        runtime.last_heartbeat_mono = chunk.received_mono
        runtime.heartbeat_interval_s = heartbeat.interval_s
        runtime.last_heartbeat_at = chunk.received_at
        runtime.last_heartbeat = payload
        runtime.last_seen_at = chunk.received_at
        runtime.heartbeats_pending += 1
        runtime.dirty = True
        self._readings(runtime, heartbeat, chunk, batch)
        if runtime.connection is not Connection.ONLINE:
            # Heartbeats are QoS 0 and never queued for a collector that was away: one received
            # now means the device is alive now, whatever the (possibly stale) status said.
            self.set_connection(runtime, Connection.ONLINE, chunk.received_at, "heartbeat", batch)

    def _readings(
        self, runtime: DeviceRuntime, heartbeat: Heartbeat, chunk: Chunk, batch: Batch
    ) -> None:
        """Report the heartbeat only when it changes what the device says of its components or
        whether its clock is off (trusted time: the collector's receive time against the
        device's own)."""
        skew = (heartbeat.at - chunk.received).total_seconds() * 1000.0
        runtime.clock_skew_ms = skew
        skewed = abs(skew) > self._skew_limit
        # Cheap to compare (enum members by identity); readings are built only on a change.
        signature = [(name, h.state, h.reason) for name, h in heartbeat.components.items()]
        if signature == runtime.component_signature and skewed == runtime.clock_skewed:
            return
        runtime.component_signature = signature
        components = {
            name: ComponentReading(health.kind.value, health.state.value, health.reason)
            for name, health in heartbeat.components.items()
        }
        runtime.components = components
        runtime.clock_skewed = skewed
        batch.result.facts.append(
            ComponentReport(runtime.device_id, components, skewed, skew, chunk.received_at)
        )

    def rebase(self, devices: dict[str, DeviceRuntime], now_mono: float) -> None:
        """The collector can see again (reconnected): everyone gets a full period of grace."""
        for runtime in devices.values():
            runtime.last_heartbeat_mono = now_mono

    def status(self, runtime: DeviceRuntime, status: Status, chunk: Chunk, batch: Batch) -> None:
        runtime.last_seen_at = chunk.received_at
        runtime.dirty = True
        if status.state is DeviceState.ONLINE and status.order_key >= runtime.order_key:
            # Also from the retained copy a restarted collector reads again (same order key).
            runtime.keepalive_s = status.keepalive_s
        if not status_is_newer(runtime, status):
            if status.order_key < runtime.order_key:
                self._metrics.status_stale += 1
                log.info(
                    "ingest.status_stale device=%s state=%s boot_no=%d conn_no=%d",
                    runtime.device_id,
                    status.state.value,
                    status.boot_no,
                    status.conn_no,
                )
            return
        runtime.order_key = status.order_key
        runtime.boot_id = str(status.boot_id)
        self._db.execute(
            "UPDATE device_state SET boot_id = ?, boot_no = ?, conn_no = ?, version = ?, "
            "config_hash = ? WHERE device_id = ?",
            (
                runtime.boot_id,
                status.boot_no,
                status.conn_no,
                status.version,
                status.config_hash,
                runtime.device_id,
            ),
        )
        connection = connection_for(status.state)
        if connection is Connection.ONLINE:
            runtime.last_heartbeat_mono = chunk.received_mono  # a fresh connection is fresh
        reason = OfflineReason.WILL.value if connection is Connection.OFFLINE else None
        self.set_connection(runtime, connection, chunk.received_at, reason, batch)
        self._metrics.status_applied += 1

    def set_connection(
        self,
        runtime: DeviceRuntime,
        connection: Connection,
        at: str,
        reason: str | None,
        batch: Batch,
    ) -> None:
        previous = runtime.connection
        runtime.connection = connection
        runtime.connection_since = at
        runtime.offline_reason = reason if connection is Connection.OFFLINE else None
        self._db.execute(
            "UPDATE device_state SET connection = ?, connection_since = ?, offline_reason = ? "
            "WHERE device_id = ?",
            (connection.value, at, runtime.offline_reason, runtime.device_id),
        )
        boot_no, conn_no, _ = runtime.order_key
        self._db.execute(
            "INSERT INTO status_log (device_id, at, connection, reason, boot_id, boot_no, conn_no) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (runtime.device_id, at, connection.value, reason, runtime.boot_id, boot_no, conn_no),
        )
        change = StatusChange(runtime.device_id, connection, at, reason, previous)
        batch.result.status_changes.append(change)
        batch.result.facts.append(change)
        log.info(
            "device.connection device=%s state=%s previous=%s reason=%s",
            runtime.device_id,
            connection.value,
            previous.value,
            reason,
        )

    def flush(self, devices: dict[str, DeviceRuntime]) -> int:
        """Write what heartbeats and traffic changed since the last flush; return how many
        heartbeats that covered."""
        rows = []
        covered = 0
        for runtime in devices.values():
            if not runtime.dirty:
                continue
            rows.append(
                (
                    runtime.last_seen_at,
                    runtime.last_heartbeat_at,
                    runtime.heartbeat_interval_s,
                    runtime.heartbeats_pending,
                    runtime.last_heartbeat.decode() if runtime.last_heartbeat else None,
                    runtime.clock_skew_ms,
                    runtime.device_id,
                )
            )
            covered += runtime.heartbeats_pending
            runtime.heartbeats_pending = 0
            runtime.dirty = False
        if rows:
            self._db.executemany(FLUSH_DEVICE_STATE, rows)
        return covered

    def sweep(
        self, devices: dict[str, DeviceRuntime], seen_until: float, now: str, batch: Batch
    ) -> None:
        """Mark ``offline`` every online device silent for 1.5 x its keepalive (or, for a device
        that does not say its keepalive, too many heartbeat intervals).

        ``seen_until`` is the receive time up to which every message has been processed: while
        the writer is behind, a heartbeat may be waiting in its queue, and silence is judged only
        up to the oldest message not yet read."""
        if self.blind:
            return
        for runtime in devices.values():
            if runtime.connection is not Connection.ONLINE:
                continue
            silent_s = seen_until - runtime.last_heartbeat_mono
            keepalive, interval = runtime.keepalive_s, runtime.heartbeat_interval_s
            if keepalive is not None and silent_s > KEEPALIVE_GRACE * keepalive:
                reason = OfflineReason.KEEPALIVE_TIMEOUT
            elif interval is not None and silent_s > self._timeout_factor * interval:
                reason = OfflineReason.HEARTBEAT_TIMEOUT
            else:
                continue
            self.set_connection(runtime, Connection.OFFLINE, now, reason.value, batch)


__all__ = ["Connectivity", "StatusChange"]
