"""Crash recovery of the spool, run in a worker thread before capture starts.

A ``.part`` left by a crash is never thrown away: it is cut back to whole 188-byte TS packets,
fsynced, hashed, renamed into the spool and described by a manifest with ``partial=True`` (its end
time from the last timestamp in it), in seq order per stream so the manifest chain stays unbroken.
A segment whose file vanished entirely is sealed as an empty partial segment, so its seq is not a
silent gap. Segments that were signed but not announced are returned for announcing.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

from edge_agent.recording.catalog import SegmentState, SpoolCatalog, SpooledSegment
from edge_agent.recording.errors import RecordingError, SpoolError
from edge_agent.recording.manifest import ManifestSigner, SegmentFacts
from edge_agent.recording.mpegts import media_span_s, whole_packets_length
from edge_agent.recording.segment_file import PART_SUFFIX, part_path, publish
from protocol.durable import fsync_dir, sha256_file
from protocol.recording import SignedManifest

log = logging.getLogger(__name__)


def recover(catalog: SpoolCatalog, signer: ManifestSigner) -> list[SignedManifest]:
    """Finish what a crash interrupted; return the manifests still to be announced."""
    for segment in catalog.unfinished():
        try:
            finish(catalog, signer, segment)
        except RecordingError as exc:
            log.error(
                "recorder.recovery_failed stream=%s seq=%d error=%s",
                segment.stream,
                segment.seq,
                exc,
            )
    known = {part_path(catalog.file_path(s)) for s in catalog.unfinished()}
    for orphan in sorted(catalog.root.glob(f"*/*{PART_SUFFIX}")):
        if orphan not in known:
            log.error("recorder.orphan_part path=%s", orphan)
    return [s.manifest for s in catalog.unannounced() if s.manifest is not None]


def finish(
    catalog: SpoolCatalog, signer: ManifestSigner, segment: SpooledSegment
) -> SignedManifest:
    """Seal, sign and record one ``writing`` or ``closed`` segment."""
    final = catalog.file_path(segment)
    part = part_path(final)
    if segment.state is SegmentState.WRITING:
        if not part.exists() and final.exists():
            os.replace(final, part)
        size, sha256, span = _seal(part)
        end_mono = segment.start_mono + span
        end_at = segment.start_at + timedelta(seconds=span)
        catalog.mark_closed(
            segment.stream,
            segment.seq,
            size=size,
            sha256=sha256,
            end_mono=end_mono,
            end_at=end_at,
            partial=True,
        )
        partial = True
        log.warning(
            "recorder.partial_recovered stream=%s seq=%d size=%d span_s=%.2f",
            segment.stream,
            segment.seq,
            size,
            span,
        )
    else:
        size, sha256 = segment.size or 0, segment.sha256 or ""
        end_mono = segment.end_mono if segment.end_mono is not None else segment.start_mono
        end_at = segment.end_at or segment.start_at
        partial = segment.partial
    if part.exists():
        publish(part, final)
    actual_size, actual_sha256 = _hash(final)
    if (actual_size, actual_sha256) != (size, sha256):
        log.error(
            "recorder.recovered_mismatch stream=%s seq=%d size=%d expected=%d",
            segment.stream,
            segment.seq,
            actual_size,
            size,
        )
        size, sha256, partial = actual_size, actual_sha256, True
    facts = SegmentFacts(
        stream=segment.stream,
        kind=segment.kind,
        seq=segment.seq,
        recording_id=segment.recording_id,
        boot_id=segment.boot_id,
        start_at=segment.start_at,
        end_at=end_at,
        start_mono=segment.start_mono,
        end_mono=end_mono,
        clock_synced=segment.clock_synced,
        codec=segment.codec,
        size=size,
        sha256=sha256,
        partial=partial,
        alarm=segment.alarm,
        pre_roll_s=segment.pre_roll_s,
    )
    signed = signer.sign(facts, catalog.chain_head(segment.stream))
    catalog.mark_recorded(signed)
    return signed


def _seal(part: Path) -> tuple[int, str, float]:
    """Cut ``part`` back to whole TS packets and fsync it: (size, sha256, media seconds)."""
    try:
        if not part.exists():
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            os.close(fd)
            fsync_dir(part.parent)
        data = part.read_bytes()
        keep = whole_packets_length(data)
        with part.open("r+b") as handle:
            if keep < len(data):
                handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise SpoolError(f"cannot seal {part}: {exc}") from exc
    size, sha256 = _hash(part)
    return size, sha256, media_span_s(data[:keep])


def _hash(path: Path) -> tuple[int, str]:
    try:
        return sha256_file(path)
    except OSError as exc:
        raise SpoolError(f"cannot read {path}: {exc}") from exc
