"""The spool's background services of an agent whose recorder keeps segments on disk: the spool
monitor (backlog and measured rate), the disk policy and the uploader, built from the config."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from edge_agent.recording.catalog import SpoolCatalog
from edge_agent.storage.monitor import SpoolMonitor, estimated_rates
from edge_agent.storage.policy import DiskPolicy, DiskPolicySettings
from edge_agent.storage.space import MIB, free_bytes_of
from edge_agent.upload.keypin import PIN_FILE, CollectorKeyPin
from edge_agent.upload.uploader import Uploader, UploaderSettings
from firmware_config.schema import AgentConfig
from protocol.clock import Clock
from protocol.events import EventBodyType
from protocol.messages import UploadStats

log = logging.getLogger(__name__)


@dataclass
class SpoolServices:
    monitor: SpoolMonitor
    policy: DiskPolicy
    uploader: Uploader | None
    """``None`` when ``upload.enabled`` is off."""

    def upload_stats(self) -> UploadStats:
        """The heartbeat's ``uploads``."""
        snapshot = self.monitor.snapshot
        counters = None if self.uploader is None else self.uploader.counters
        return UploadStats(
            backlog_segments=snapshot.backlog_segments,
            backlog_bytes=snapshot.backlog_bytes,
            oldest_age_s=self.monitor.oldest_backlog_age_s(),
            last_receipt_at=None if counters is None else counters.last_receipt_at,
            corrupt_segments=snapshot.corrupt_segments,
            receipts_rejected=None if counters is None else counters.receipts_rejected,
        )

    def collector_back(self) -> None:
        """The collector announced itself online: retry uploading now, not after the backoff."""
        if self.uploader is not None:
            self.uploader.poke()

    def tasks(self) -> list[tuple[str, Coroutine[Any, Any, None]]]:
        """(name, coroutine) of each background task, for the agent's task group."""
        tasks: list[tuple[str, Coroutine[Any, Any, None]]] = [
            ("spool-monitor", self.monitor.run()),
            ("disk-policy", self.policy.run()),
        ]
        if self.uploader is not None:
            tasks.append(("uploader", self.uploader.run()))
        return tasks


def build_spool_services(
    config: AgentConfig,
    data_dir: Path,
    catalog: SpoolCatalog,
    *,
    clock: Clock,
    emit: Callable[[EventBodyType], object],
) -> SpoolServices:
    upload = config.upload
    monitor = SpoolMonitor(
        catalog, estimated_rates(config), clock, interval_s=config.heartbeat.interval_s
    )
    free_hours = upload.free_hours
    policy = DiskPolicy(
        catalog,
        DiskPolicySettings(
            reserve_bytes=config.storage.reserve_mb * MIB,
            free_hours=config.health.disk_low_hours + 1 if free_hours is None else free_hours,
            keep_receipted=timedelta(days=config.storage.keep_receipted_days),
        ),
        clock=clock,
        emit=emit,
        rate=monitor.rate,
        free_bytes=free_bytes_of(catalog.root),
    )
    uploader = None
    if upload.enabled:
        uploader = Uploader(
            catalog,
            UploaderSettings(
                collector_url=str(config.collector.url),
                chunk_bytes=upload.chunk_bytes,
                bytes_per_s=upload.bandwidth_bytes_per_s,
                token=_token(upload.token_file),
                request_timeout_s=upload.request_timeout_s,
                retry_max_s=upload.retry_max_s,
            ),
            clock=clock,
            emit=emit,
            key_pin=CollectorKeyPin(data_dir / PIN_FILE, upload.collector_key),
            on_receipted=policy.poke,
        )
    else:
        log.warning("upload.disabled device=%s", config.device.id)
    return SpoolServices(monitor, policy, uploader)


def _token(path: Path | None) -> str | None:
    """The bearer token; an unreadable file is logged, never a reason not to start (recording
    matters more than uploading, and the collector's refusals say what is wrong)."""
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        log.error("upload.token_unreadable path=%s error=%s", path, exc)
        return None
