"""A cleared alert never says its condition is still active (issue 9, point 11).

When the condition ends and the alert clears with it ("condition ended"), the ``cleared``
transition on ``custos/v1/alerts`` and the alert at ``GET /api/v1/alerts?state=cleared`` both carry
``condition_active: false``: for an alert that clears with its condition (a door that closes) and
for a latched one acknowledged while its condition held and released afterwards (a panic
button). Simulated rooms (the real agent on mock pins), real Mosquitto, the real collector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from simulators.broker import MosquittoBroker
from tests.helpers import RunningCollector, eventually, make_room, started_room
from tests.test_alerts_e2e import AlertSubscriber


async def _transition(subscriber: AlertSubscriber, rule: str, transition: str) -> dict[str, Any]:
    async def seen() -> dict[str, Any] | None:
        found = [
            m for m in subscriber.messages if (m["rule"], m["transition"]) == (rule, transition)
        ]
        return found[-1] if found else None

    return await eventually(seen, what=f"{rule} {transition} on custos/v1/alerts")


async def _cleared_in_api(collector: RunningCollector, alert_id: int) -> dict[str, Any]:
    alerts = (await collector.api("/api/v1/alerts?state=cleared"))["alerts"]
    [alert] = [a for a in alerts if a["id"] == alert_id]
    return dict(alert)


async def test_an_alert_cleared_with_its_condition_says_the_condition_ended(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    subscriber = AlertSubscriber(broker.port)
    await subscriber.start()
    room = await started_room(make_room(broker.url, collector.url, tmp_path), collector.url)
    try:
        room.act("door.open")
        raised = await _transition(subscriber, "door", "raised")
        assert raised["condition_active"] is True
        room.act("door.close")
        cleared = await _transition(subscriber, "door", "cleared")
        assert (cleared["comment"], cleared["condition_active"]) == ("condition ended", False)
        stored = await _cleared_in_api(collector, raised["alert_id"])
        assert (stored["clear_reason"], stored["condition_active"]) == ("condition ended", False)
    finally:
        await room.stop()
        await subscriber.stop()


async def test_a_latched_alert_acknowledged_then_released_clears_as_ended(
    broker: MosquittoBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    subscriber = AlertSubscriber(broker.port)
    await subscriber.start()
    room = await started_room(make_room(broker.url, collector.url, tmp_path), collector.url)
    try:
        room.act("panic.press")
        raised = await _transition(subscriber, "panic", "raised")
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{collector.url}/api/v1/alerts/{raised['alert_id']}/ack",
                json={"by": "duty officer 1042", "comment": "on the way"},
            ) as reply,
        ):
            assert reply.status == 200
        acknowledged = await _transition(subscriber, "panic", "acknowledged")
        assert acknowledged["condition_active"] is True  # still pressed: stays open
        room.act("panic.release")
        cleared = await _transition(subscriber, "panic", "cleared")
        assert (cleared["comment"], cleared["condition_active"]) == ("condition ended", False)
        stored = await _cleared_in_api(collector, raised["alert_id"])
        assert stored["condition_active"] is False
    finally:
        await room.stop()
        await subscriber.stop()
