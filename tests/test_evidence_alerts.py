"""Tampering found by the evidence store reaches the command center as an alert: the same segment
uploaded with other content raises a critical alert, a second finding updates it instead of
opening another, and acknowledging it closes it (there is no condition to wait for)."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.helpers import RunningCollector, eventually, get_json, post_json
from tests.test_evidence_support import DeviceKey, Stream, enroll, segment_bytes, upload


async def tamper_alerts(collector: RunningCollector, state: str) -> list[dict[str, Any]]:
    listing = await get_json(f"{collector.url}/api/v1/alerts?state={state}&device=ir-101")
    return [a for a in listing["alerts"] if a["rule"] == "evidence_tamper"]


async def test_a_conflicting_upload_raises_one_tamper_alert_that_an_ack_closes(
    collector: RunningCollector,
) -> None:
    await enroll(collector, "ir-101")
    key = DeviceKey()
    original = segment_bytes(6000, 1)
    async with aiohttp.ClientSession() as http:
        assert (
            await upload(http, collector.url, Stream("ir-101", key).next(original), original)
        ).status == 204
        for seed in (2, 3):
            altered = segment_bytes(6000, seed)
            signed = Stream("ir-101", key).next(altered)
            assert (await upload(http, collector.url, signed, altered)).status == 409

    async def updated_twice() -> list[dict[str, Any]] | None:
        found = await tamper_alerts(collector, "raised")
        return found if found and found[0]["occurrences"] == 2 else None

    (alert,) = await eventually(updated_twice, what="one tamper alert seen twice")
    assert alert["severity"] == "critical"
    assert "cam1#1" in alert["detail"]

    await post_json(f"{collector.url}/api/v1/alerts/{alert['id']}/ack", {"by": "duty-officer"})
    assert await tamper_alerts(collector, "open") == []
    assert (await tamper_alerts(collector, "cleared"))[0]["id"] == alert["id"]
