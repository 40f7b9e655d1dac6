"""A simulated site: several rooms, enrolled with the collector the way an installer does it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiohttp

from simulators.room import RoomSpec, SimulatedRoom, room_config

log = logging.getLogger(__name__)

PROFILE_CYCLE = ("interrogation", "interrogation", "waiting")
ABBREVIATION = {"interrogation": "ir", "waiting": "wr"}


class EnrollmentError(Exception):
    pass


@dataclass(frozen=True)
class SiteOptions:
    broker_url: str
    collector_url: str
    data_dir: Path
    keepalive_s: int = 10
    heartbeat_s: float = 10.0
    resend_after_s: float = 10.0
    media: Literal["simulated", "synthetic"] = "synthetic"


def room_specs(site: str, count: int) -> list[RoomSpec]:
    specs, numbers = [], dict.fromkeys(PROFILE_CYCLE, 0)
    for index in range(count):
        profile = PROFILE_CYCLE[index % len(PROFILE_CYCLE)]
        numbers[profile] += 1
        number = numbers[profile]
        specs.append(
            RoomSpec(
                device_id=f"{site}-{ABBREVIATION[profile]}{number}",
                site=site,
                room=f"{profile}-{number}",
                profile=profile,
                name=f"{'讯问室' if profile == 'interrogation' else '候问室'} {number}",
            )
        )
    return specs


def build_rooms(specs: Sequence[RoomSpec], options: SiteOptions) -> list[SimulatedRoom]:
    return [
        SimulatedRoom(
            room_config(
                spec,
                broker_url=options.broker_url,
                collector_url=options.collector_url,
                data_dir=options.data_dir / spec.device_id,
                keepalive_s=options.keepalive_s,
                heartbeat_s=options.heartbeat_s,
                resend_after_s=options.resend_after_s,
            ),
            media=options.media,
        )
        for spec in specs
    ]


async def enroll_rooms(
    rooms: Sequence[SimulatedRoom],
    collector_url: str,
    *,
    token: str | None = None,
    timeout_s: float = 60.0,
) -> None:
    """POST each device to ``/api/v1/devices``, waiting for the collector to come up."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = asyncio.get_running_loop().time() + timeout_s
    url = f"{collector_url.rstrip('/')}/api/v1/devices"
    async with aiohttp.ClientSession(
        headers=headers, timeout=aiohttp.ClientTimeout(total=10)
    ) as http:
        for room in rooms:
            device = room.config.device
            body = {
                "device_id": device.id,
                "site": device.site,
                "room": device.room,
                "room_kind": device.room_kind.value,
                "name": device.name,
            }
            while True:
                try:
                    async with http.post(url, json=body) as response:
                        if response.status >= 400:
                            reply = await response.json()
                            raise EnrollmentError(
                                f"collector refused {device.id} ({response.status}): "
                                f"{reply.get('error', {}).get('message', reply)}"
                            )
                        break
                except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                    if asyncio.get_running_loop().time() > deadline:
                        raise EnrollmentError(
                            f"collector at {collector_url} unreachable: {exc}"
                        ) from exc
                    await asyncio.sleep(0.5)
            log.info("sim.enrolled device=%s room=%s", device.id, device.room)
