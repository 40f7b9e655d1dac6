"""Each simulated camera and microphone records content of its own: a recording filed under the
wrong stream or the wrong device could not go unnoticed otherwise."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

from edge_agent.capture.ports import EncodedPacket
from edge_agent.recording.factory import build_sources
from protocol.clock import SystemClock
from simulators.room import RoomSpec, room_config
from tests.helpers import eventually

PACKETS_PER_STREAM = 25


async def _record(device_ids: list[str], tmp_path: Path) -> dict[str, str]:
    """sha256 of each stream's first packets, keyed ``device/stream``."""
    clock = SystemClock()
    packets: dict[str, list[bytes]] = defaultdict(list)
    sources = []
    for device_id in device_ids:
        config = room_config(
            RoomSpec(device_id, "north", f"room-{device_id}", profile="interrogation"),
            broker_url="mqtt://127.0.0.1:1",
            collector_url="http://127.0.0.1:1",
            data_dir=tmp_path / device_id,
        )
        for source in build_sources(config, clock):

            def sink(packet: EncodedPacket, key: str = f"{device_id}/{source.id}") -> None:
                packets[key].append(packet.data)

            sources.append(source)
            await source.start(sink)
    try:
        await eventually(
            lambda: _all_have(packets, len(sources)), timeout=60, what="packets from every stream"
        )
    finally:
        for source in sources:
            await source.stop()
    return {
        key: hashlib.sha256(b"".join(data[:PACKETS_PER_STREAM])).hexdigest()
        for key, data in packets.items()
    }


async def _all_have(packets: dict[str, list[bytes]], streams: int) -> bool:
    return len(packets) == streams and all(
        len(data) >= PACKETS_PER_STREAM for data in packets.values()
    )


async def test_two_rooms_with_two_microphones_and_cameras_each_record_distinct_bytes(
    tmp_path: Path,
) -> None:
    digests = await _record(["ir-101", "ir-102"], tmp_path)
    # The interrogation profile has two microphones; both rooms use the same component ids.
    microphones = [key for key in digests if "/mic" in key]
    assert len(microphones) == 4
    assert len(digests) >= 6
    assert len(set(digests.values())) == len(digests), digests


async def test_a_stream_records_the_same_content_on_every_run(tmp_path: Path) -> None:
    first = await _record(["ir-101"], tmp_path / "one")
    again = await _record(["ir-101"], tmp_path / "two")
    microphones = sorted(key for key in first if "/mic" in key)
    # Audio is generated sample by sample from the stream's identity, so it repeats exactly.
    assert [first[key] for key in microphones] == [again[key] for key in microphones]
