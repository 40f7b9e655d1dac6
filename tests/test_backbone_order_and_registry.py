"""Alarms before backlog, enrollment from a registry file and from the command line, backoff."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

from protocol.backoff import Backoff
from simulators.broker import MosquittoBroker
from tests.helpers import (
    RunningCollector,
    eventually,
    make_room,
    outbox_rows,
    running_collector,
    started_room,
)


async def test_an_alarm_jumps_the_backlog(broker: MosquittoBroker, tmp_path: Path) -> None:
    async with running_collector(broker.url, tmp_path / "first") as collector:
        room = await started_room(make_room(broker.url, collector.url, tmp_path), collector.url)
    # The collector is gone: 300 door events pile up in the outbox.
    watcher = await asyncio.create_subprocess_exec(
        "mosquitto_sub", "-p", str(broker.port), "-v", "-t", "custos/v1/dev/ir-101/+",
        "-t", "custos/v1/collector/status", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        for index in range(300):
            room.act("door.open" if index % 2 == 0 else "door.close")
            await asyncio.sleep(0.055)
        room.act("panic.press")
        await asyncio.sleep(0.2)
        # What the agent wrote (on a loaded machine its debounce may fold a few door toggles).
        written = outbox_rows(tmp_path / room.device_id)
        doors = sum(kind.startswith("door.") for _, kind, _ in written)
        assert doors >= 200 and any(kind == "panic.pressed" for _, kind, _ in written)
        async with running_collector(broker.url, tmp_path / "first") as collector:

            async def all_stored() -> bool:
                return int(collector.query("SELECT COUNT(*) FROM events")[0][0]) >= len(written)

            await eventually(all_stored, what="backlog and panic stored")
        watcher.terminate()
        output, _ = await watcher.communicate()
    finally:
        await room.abandon()
    lines = output.decode().splitlines()
    # What the agent sent once the collector announced itself, in the order the broker got it.
    back = max(
        i for i, line in enumerate(lines) if '"state":"online"' in line and "collector" in line
    )
    published = [line.split(" ", 1) for line in lines[back + 1 :] if "/dev/ir-101/" in line]
    # Heartbeats and status go out whenever they are due; the order that matters is the outbox's.
    sent_after = [(t, p) for t, p in published if t.endswith(("/event", "/alarm"))]
    first_topic, first_payload = sent_after[0]
    assert first_topic.endswith("/alarm")
    assert json.loads(first_payload)["body"]["type"] == "panic.pressed"
    assert sum(topic.endswith("/event") for topic, _ in sent_after) >= doors  # the backlog after


async def test_devices_listed_in_a_registry_file_are_enrolled_at_start(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    registry = tmp_path / "registry.toml"
    registry.write_text(
        '[[devices]]\ndevice_id = "ir-201"\nsite = "east"\nroom = "interrogation-1"\nroom_kind = "interrogation"\n'
        'name = "讯问室 1"\n\n[[devices]]\ndevice_id = "wr-202"\nsite = "east"\nroom = "waiting-1"\nroom_kind = "waiting"\n',
        encoding="utf-8",
    )
    async with running_collector(broker.url, tmp_path / "c", registry_file=registry) as collector:
        listing = await collector.api("/api/v1/devices?site=east")
        assert [(d["device_id"], d["room"], d["connection"]) for d in listing["devices"]] == [
            ("ir-201", "interrogation-1", "unknown"),
            ("wr-202", "waiting-1", "unknown"),
        ]
        assert listing["devices"][0]["name"] == "讯问室 1"


async def test_a_large_registry_file_is_enrolled_whole(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """Enrolled a few hundred per transaction: every device, the last included, is known."""
    registry = tmp_path / "registry.toml"
    registry.write_text(
        "".join(
            f'[[devices]]\ndevice_id = "wr-{n:04d}"\nsite = "north"\nroom = "waiting-{n}"\n'
            'room_kind = "waiting"\n\n'
            for n in range(1201)
        ),
        encoding="utf-8",
    )
    async with running_collector(broker.url, tmp_path / "c", registry_file=registry) as collector:
        listing = await collector.api("/api/v1/devices?site=north")
        ids = sorted(d["device_id"] for d in listing["devices"])
        assert ids == [f"wr-{n:04d}" for n in range(1201)]


async def test_the_enroll_command_talks_to_a_running_collector(collector: RunningCollector) -> None:
    async def cli(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "collector.cli", *args, "--url", collector.url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, _ = await cli(
        "enroll", "ir-301", "--site", "west", "--room", "interrogation-2", "--kind", "interrogation"
    )
    assert (code, out.strip()) == (
        0,
        "enrolled ir-301: site west, room interrogation-2 (interrogation)",
    )
    code, out, _ = await cli(
        "enroll", "ir-301", "--site", "west", "--room", "interrogation-3", "--kind", "interrogation"
    )
    assert (code, out.split(":")[0]) == (0, "updated ir-301")
    code, _, err = await cli(
        "enroll", "IR 301", "--site", "west", "--room", "x", "--kind", "waiting"
    )
    assert code == 1
    assert "refused (422): device_id: String should match pattern" in err
    code, out, _ = await cli("devices")
    assert code == 0
    assert "ir-301" in out and "interrogation-3" in out


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(12)]
    steps = [min(30.0, 0.5 * 2**n) for n in range(12)]
    assert all(step / 2 <= delay <= step for delay, step in zip(delays, steps, strict=True))
    assert max(delays) <= 30.0
    assert len({round(d, 6) for d in delays[6:]}) > 1  # capped, yet not in lockstep
    backoff.reset()
    assert backoff.next_delay() <= 0.5
