"""Scenarios end to end: simulated rooms (real agent code on mock pins) → real Mosquitto → the
collector's alert engine → what a plain MQTT subscriber on ``custos/v1/alerts`` and a signed
webhook receiver see."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from collector.alerts.policy import AlertPolicy, EscalationPolicy, SitePolicy, WebhookEndpoint
from protocol.clock import SystemClock
from simulators.broker import MosquittoBroker
from simulators.room import SimulatedRoom
from simulators.scenario import load_scenario, play
from simulators.webhook_receiver import WebhookReceiver
from tests.helpers import RunningCollector, eventually, make_room, running_collector, started_room

SECRET = b"test-webhook-secret"


class AlertSubscriber:
    """``mosquitto_sub`` on the alerts topic: what a command-center client receives."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._process: asyncio.subprocess.Process | None = None
        self.messages: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            "mosquitto_sub", "-p", str(self._port), "-q", "1", "-t", "custos/v1/alerts",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await asyncio.sleep(0.3)  # subscribed before anything happens

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        while line := await self._process.stdout.readline():
            self.messages.append(json.loads(line))

    async def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            await self._process.wait()
        if self._reader is not None:
            await self._reader


@dataclass
class Setup:
    collector: RunningCollector
    receiver: WebhookReceiver
    subscriber: AlertSubscriber

    def seen(self, rule: str, transition: str) -> bool:
        return _has(self.subscriber.messages, rule, transition) and _has(
            self.receiver.received, rule, transition
        )

    async def wait_for(self, rule: str, transition: str, timeout: float = 30) -> dict[str, Any]:
        async def both() -> bool:
            return self.seen(rule, transition)

        await eventually(both, timeout=timeout, what=f"{rule} {transition} at MQTT and webhook")
        return next(
            m for m in self.receiver.received if m["rule"] == rule and m["transition"] == transition
        )


def _has(messages: list[dict[str, Any]], rule: str, transition: str) -> bool:
    return any(m["rule"] == rule and m["transition"] == transition for m in messages)


def _hours_excluding_now() -> str:
    now = datetime.now(UTC) + timedelta(hours=8)  # Asia/Shanghai
    start = (now + timedelta(hours=2)).strftime("%H:00")
    end = (now + timedelta(hours=4)).strftime("%H:00")
    return f"{start}-{end}" if start < end else "03:00-04:00"


@asynccontextmanager
async def alerting(
    broker: MosquittoBroker, tmp_path: Path, *, site: SitePolicy | None = None, **extra: Any
) -> AsyncIterator[Setup]:
    receiver = WebhookReceiver(SECRET)
    await receiver.start()
    secret_file = tmp_path / "webhook.secret"
    secret_file.write_bytes(SECRET)
    policy = AlertPolicy(
        default_site=site or SitePolicy(business_hours="00:00-24:00"),
        webhooks=[
            WebhookEndpoint(
                name="command-center", url=receiver.url, secret_file=secret_file, timeout_s=2
            )
        ],
        **extra,
    )
    subscriber = AlertSubscriber(broker.port)
    await subscriber.start()
    try:
        async with running_collector(
            broker.url, tmp_path / "collector", alerts=policy
        ) as collector:
            yield Setup(collector, receiver, subscriber)
    finally:
        await subscriber.stop()
        await receiver.stop()


async def _room(
    setup: Setup, broker: MosquittoBroker, tmp_path: Path, profile: str = "interrogation"
) -> SimulatedRoom:
    device = "wr-101" if profile == "waiting" else "ir-101"
    room = make_room(broker.url, setup.collector.url, tmp_path, device, profile=profile)
    return await started_room(room, setup.collector.url)


async def test_a_suspect_questioned_gives_door_notices_and_nothing_critical(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with alerting(broker, tmp_path) as setup:
        room = await _room(setup, broker, tmp_path)
        try:
            await play(load_scenario("interrogation"), [room], SystemClock())
            door = await setup.wait_for("door", "raised")
            assert door["severity"] == "medium"
            assert door["room"] == "interrogation-1"
            await setup.wait_for("door", "cleared")
            await asyncio.sleep(1.0)
            rules = {m["rule"] for m in setup.subscriber.messages}
            assert rules == {"door"}, "recording was confirmed: nothing else to report"
            assert setup.receiver.rejected == []
        finally:
            await room.stop()


async def test_a_panic_press_is_critical_and_stays_until_acknowledged(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with alerting(broker, tmp_path) as setup:
        room = await _room(setup, broker, tmp_path)
        try:
            await play(load_scenario("panic"), [room], SystemClock())
            raised = await setup.wait_for("panic", "raised")
            assert (raised["severity"], raised["state"], raised["device_id"]) == (
                "critical",
                "raised",
                "ir-101",
            )
            ended = await setup.wait_for("panic", "updated")  # released: the condition ended
            assert (ended["state"], ended["condition_active"]) == ("raised", False)
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"{setup.collector.url}/api/v1/alerts/{raised['alert_id']}/ack",
                    json={"by": "duty officer 1042", "comment": "on the way"},
                ) as reply,
            ):
                assert reply.status == 200
            acked = await setup.wait_for("panic", "acknowledged")
            assert acked["actor"] == "duty officer 1042"
            await setup.wait_for("panic", "cleared")
            stored = await setup.collector.api(f"/api/v1/alerts/{raised['alert_id']}")
            assert stored["state"] == "cleared"
            assert [t["transition"] for t in stored["transitions"]] == [
                "raised",
                "updated",
                "acknowledged",
                "cleared",
            ]
        finally:
            await room.stop()


async def test_a_door_opened_at_night_is_high_severity(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    site = SitePolicy(business_hours=_hours_excluding_now())
    async with alerting(broker, tmp_path, site=site) as setup:
        room = await _room(setup, broker, tmp_path, profile="waiting")
        try:
            await play(load_scenario("night-door"), [room], SystemClock())
            raised = await setup.wait_for("door", "raised")
            assert raised["severity"] == "high"
            assert "outside business hours" in raised["detail"]
            await setup.wait_for("door", "cleared")
        finally:
            await room.stop()


async def test_a_camera_covered_during_an_interrogation_is_an_obstruction_and_a_critical_fault(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with alerting(broker, tmp_path) as setup:
        room = await _room(setup, broker, tmp_path)
        try:
            player = asyncio.create_task(play(load_scenario("camera-fault"), [room], SystemClock()))
            obstruction = await setup.wait_for("obstruction", "raised", timeout=40)
            assert (obstruction["severity"], obstruction["title"]) == ("high", "Camera covered")
            fault = await setup.wait_for("occupied_fault", "raised", timeout=40)
            assert fault["severity"] == "critical"
            assert "cam-room covered" in fault["detail"]
            await player
            await setup.wait_for("obstruction", "updated", timeout=20)  # uncovered: condition ended
            open_alerts = await setup.collector.api("/api/v1/alerts?state=open")
            assert {a["rule"] for a in open_alerts["alerts"]} >= {"obstruction", "occupied_fault"}
        finally:
            await room.stop()


async def test_an_occupied_room_without_confirmed_recording_is_critical(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    site = SitePolicy(business_hours="00:00-24:00", recording_confirm_s=2)
    async with alerting(broker, tmp_path, site=site) as setup:
        room = await _room(setup, broker, tmp_path)
        try:
            await asyncio.sleep(0.5)
            await room.agent.request_recording_stop("test")  # refused: the room is being checked
            room.fault("recorder.fail")
            await eventually(
                lambda: asyncio.sleep(0, room.recorder.recording), what="recording after start"
            )
            # Recording ends (say the recorder crashed) while people are inside, and cannot restart.
            await room.recorder.stop("simulated crash")
            room.act("motion.start")
            raised = await setup.wait_for("recording", "raised")
            assert raised["severity"] == "critical"
            assert "recording was not confirmed within 2 s" in raised["detail"]
            room.fault("recorder.mend")
            room.act("motion.stop")
            await asyncio.sleep(0.5)
            room.act("motion.start")  # a new trigger: the recorder starts again
            await setup.wait_for("recording", "updated")
        finally:
            await room.stop()


async def test_a_failing_then_hanging_webhook_is_retried_and_the_alert_still_arrives(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with alerting(broker, tmp_path) as setup:
        setup.receiver.fail_next = 2
        setup.receiver.hang_next = 1
        room = await _room(setup, broker, tmp_path)
        try:
            room.act("panic.press")
            assert await eventually(
                lambda: asyncio.sleep(0, _has(setup.subscriber.messages, "panic", "raised")),
                what="MQTT first",
            )
            await setup.wait_for("panic", "raised", timeout=60)
            assert setup.receiver.attempts >= 4
            status = await setup.collector.api("/api/v1/webhooks")
            endpoint = status["webhooks"][0]
            assert endpoint["name"] == "command-center"
            assert endpoint["delivered"] >= 1
            assert endpoint["last_error"] is not None
        finally:
            await room.stop()


async def test_a_burst_of_transitions_reaches_the_webhook_once_each_and_in_order(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with alerting(broker, tmp_path) as setup:
        room = await _room(setup, broker, tmp_path)
        try:
            for _ in range(6):  # an enclosure rattled open and shut, then the panic button
                room.act("tamper.open")
                await asyncio.sleep(0.1)
                room.act("tamper.close")
                await asyncio.sleep(0.1)
            room.act("panic.press")
            await asyncio.sleep(0.1)
            room.act("panic.release")
            await setup.wait_for("panic", "updated")

            def ids(messages: list[dict[str, Any]]) -> list[int]:
                return [int(m["transition_id"]) for m in messages]

            async def caught_up() -> bool:
                sent = ids(setup.subscriber.messages)
                return bool(sent) and sorted(ids(setup.receiver.received)) == sorted(sent)

            await eventually(caught_up, what="the webhook caught up with MQTT")
            await asyncio.sleep(1.0)  # nothing more (a duplicate) comes after
            received = ids(setup.receiver.received)
            assert received == sorted(set(received)), "each once, in the order they happened"
            assert sorted(received) == sorted(ids(setup.subscriber.messages))
            assert setup.receiver.attempts == len(received)
            assert len(received) >= 5  # a burst, not one transition (the engine folds some)
        finally:
            await room.stop()


async def test_acknowledging_an_unknown_or_closed_alert_is_a_clear_error(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with alerting(broker, tmp_path) as setup, aiohttp.ClientSession() as http:
        url = setup.collector.url
        async with http.post(f"{url}/api/v1/alerts/999/ack", json={"by": "x"}) as reply:
            assert reply.status == 404
            assert (await reply.json())["error"]["code"] == "not_found"
        async with http.post(f"{url}/api/v1/alerts/abc/ack", json={"by": "x"}) as reply:
            assert reply.status == 404
        async with http.post(f"{url}/api/v1/alerts/1/ack", json={}) as reply:
            assert reply.status == 422
        room = await _room(setup, broker, tmp_path)
        try:
            room.act("panic.press")
            raised = await setup.wait_for("panic", "raised")
            ack = {"by": "duty officer"}
            async with http.post(
                f"{url}/api/v1/alerts/{raised['alert_id']}/ack", json=ack
            ) as reply:
                assert reply.status == 200
            async with http.post(
                f"{url}/api/v1/alerts/{raised['alert_id']}/ack", json=ack
            ) as reply:
                assert reply.status == 409
                assert "already acknowledged" in (await reply.json())["error"]["message"]
        finally:
            await room.stop()


async def test_the_live_stream_shows_open_alerts_then_each_transition(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with alerting(broker, tmp_path) as setup:
        room = await _room(setup, broker, tmp_path)
        try:
            room.act("tamper.open")
            await setup.wait_for("tamper", "raised")
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{setup.collector.url}/api/v1/alerts/stream") as reply,
            ):
                assert reply.headers["Content-Type"].startswith("text/event-stream")
                first = await _sse_event(reply)
                assert (first["event"], first["data"]["rule"]) == ("snapshot", "tamper")
                room.act("panic.press")
                live = await _sse_event(reply)
                assert (live["event"], live["data"]["rule"], live["data"]["transition"]) == (
                    "alert",
                    "panic",
                    "raised",
                )
                assert int(live["id"]) == live["data"]["transition_id"]
        finally:
            await room.stop()


async def _sse_event(reply: aiohttp.ClientResponse) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    async with asyncio.timeout(20):
        while True:
            line = (await reply.content.readline()).decode().rstrip("\n")
            if not line:
                if "data" in fields:
                    fields["data"] = json.loads(fields["data"])
                    return fields
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = value


async def test_a_collector_restart_keeps_open_alerts_and_resends_nothing_old(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with alerting(broker, tmp_path, escalation=EscalationPolicy(after_s=3600)) as setup:
        room = await _room(setup, broker, tmp_path)
        try:
            room.act("panic.press")
            raised = await setup.wait_for("panic", "raised")
            room.act("tamper.open")
            await setup.wait_for("tamper", "raised")
            data_dir = setup.collector.settings.data_dir
            policy = setup.collector.settings.alerts
        finally:
            await room.abandon()  # a crash: the Last Will says offline while the room is occupied
        await setup.wait_for("occupied_fault", "raised")
        before = len(setup.subscriber.messages)
        before_hooks = len(setup.receiver.received)
    subscriber = AlertSubscriber(broker.port)
    await subscriber.start()
    receiver = WebhookReceiver(SECRET, port=setup.receiver.port)
    await receiver.start()
    try:
        async with running_collector(broker.url, data_dir, alerts=policy) as collector:
            await asyncio.sleep(3)
            open_alerts = await collector.api("/api/v1/alerts?state=open")
            assert {a["rule"] for a in open_alerts["alerts"]} == {
                "panic",
                "tamper",
                "occupied_fault",
            }
            assert any(a["id"] == raised["alert_id"] for a in open_alerts["alerts"])
        assert subscriber.messages == [], "nothing already sent is sent again"
        assert receiver.received == []
    finally:
        await subscriber.stop()
        await receiver.stop()
    assert before >= 3 and before_hooks >= 3
