"""A process that presses panic buttons and times the alerts: simulated rooms running the real agent
code (``SimulatedRoom``, gpiozero mock pins), a plain MQTT subscriber on ``custos/v1/alerts`` (and
on the devices' ``…/alarm`` topics, to see the agent's own part) and a signed-webhook receiver
(``simulators.webhook_receiver``), all on one event loop, so one ``time.monotonic()`` times the
press (just before the mock pin changes) and both arrivals.

    python -m bench.alert_probe --broker URL --collector URL --data DIR --devices ID[,ID]
        --webhook-port N --secret-file F --idle N --loaded N --loaded-max-s S

At most ``--concurrent`` presses (4), each in its own room, are waiting for their alert at once:
a press counts once its ``raised`` transition has reached both the subscriber and the receiver
(or ``--timeout-s`` passed: a miss counts as that long). Sites have many rooms, and one press at
a time would leave far fewer than 1,000 presses in a bounded loaded phase. The cycle
of a room, chosen so that every press raises a *new* alert (a panic alert is latched: pressing
again while it is open only updates it): press → ``raised`` → acknowledge through the API →
release → the reset ends the condition of an acknowledged alert → ``cleared``; only then is that
room pressed again. The acknowledgement and the release of one room overlap the next press in
another. Under load the reset (an ordinary event) waits behind the heartbeat backlog, so a room
takes tens of seconds to come round: hence many rooms.

It writes ``ready.json`` when every room is connected and settled, runs the idle phase at once
(``idle.json``), runs the loaded phase on SIGUSR1 (``loaded.json``) and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.mqttsub import AsyncSubscriber, Message
from simulators.room import RoomSpec, SimulatedRoom, room_config
from simulators.webhook_receiver import WebhookReceiver

ALERTS_TOPIC = "custos/v1/alerts"
ALARM_FILTER = "custos/v1/dev/+/alarm"
log = logging.getLogger("bench.alert_probe")


@dataclass
class StampedReceiver(WebhookReceiver):
    """The simulator's receiver, with the arrival time of every accepted request."""

    on_alert: Callable[[dict[str, Any], float], None] = lambda body, at: None

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        count = len(self.received)
        response = await super()._handle(request)
        if len(self.received) > count:
            self.on_alert(self.received[-1], arrived)
        return response


@dataclass
class Press:
    pressed_at: float
    mqtt: asyncio.Future[tuple[float, int]]
    """Arrival at the subscriber, and the alert id."""
    hook: asyncio.Future[float]
    alarm: asyncio.Future[float]
    """The agent's ``panic.pressed`` at the plain subscriber (agent + broker only)."""


@dataclass
class Slot:
    room: SimulatedRoom
    free: asyncio.Event = field(default_factory=asyncio.Event)
    press: Press | None = None
    alert_id: int | None = None
    broken: bool = False


@dataclass
class Tracker:
    """Routes arrivals to the press they belong to (one press per room at a time)."""

    slots: dict[str, Slot]
    unmatched: int = 0

    def on_mqtt(self, message: Message) -> None:
        if message.retained:
            return
        try:
            body = json.loads(message.payload)
        except ValueError:
            self.unmatched += 1
            return
        if message.topic == ALERTS_TOPIC:
            self._alert(body, message.at, via_hook=False)
        elif body.get("body", {}).get("type") == "panic.pressed":
            slot = self.slots.get(body.get("device_id", ""))
            if slot is not None and slot.press is not None and not slot.press.alarm.done():
                slot.press.alarm.set_result(message.at)

    def on_hook(self, body: dict[str, Any], at: float) -> None:
        self._alert(body, at, via_hook=True)

    def _alert(self, body: dict[str, Any], at: float, *, via_hook: bool) -> None:
        slot = self.slots.get(body.get("device_id") or "")
        if slot is None or body.get("rule") != "panic":
            return
        transition = body.get("transition")
        if transition == "raised":
            press = slot.press
            if press is None:
                self.unmatched += 1
            elif via_hook and not press.hook.done():
                press.hook.set_result(at)
            elif not via_hook and not press.mqtt.done():
                press.mqtt.set_result((at, int(body["alert_id"])))
        elif transition == "cleared" and not via_hook and body.get("alert_id") == slot.alert_id:
            slot.alert_id = None
            slot.free.set()


@dataclass
class Phase:
    mqtt_ms: list[float] = field(default_factory=list)
    hook_ms: list[float] = field(default_factory=list)
    alarm_ms: list[float] = field(default_factory=list)
    collector_ms: list[float] = field(default_factory=list)
    """The alarm at the plain subscriber to the alert there: the collector's own share."""
    presses: int = 0
    missed_mqtt: int = 0
    missed_hook: int = 0
    waited_for_room_s: float = 0.0
    cycle_s: list[float] = field(default_factory=list)
    """Release to ``cleared``: how long before the room could be pressed again."""
    seconds: float = 0.0
    stopped_by: str = "count"

    def as_json(self) -> dict[str, Any]:
        return {
            "presses": self.presses,
            "mqtt_ms": self.mqtt_ms,
            "hook_ms": self.hook_ms,
            "alarm_ms": self.alarm_ms,
            "collector_ms": self.collector_ms,
            "missed_mqtt": self.missed_mqtt,
            "missed_hook": self.missed_hook,
            "waited_for_room_s": round(self.waited_for_room_s, 3),
            "cycle_s": [round(value, 3) for value in self.cycle_s],
            "seconds": round(self.seconds, 3),
            "stopped_by": self.stopped_by,
        }


@dataclass
class Cycler:
    tracker: Tracker
    http: aiohttp.ClientSession
    collector: str
    timeout_s: float
    gap_s: float
    concurrent: int = 1
    _order: list[Slot] = field(default_factory=list)
    _next: int = 0
    _lifecycles: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._order = list(self.tracker.slots.values())
        for slot in self._order:
            slot.free.set()

    async def run(self, presses: int, max_s: float) -> Phase:
        phase = Phase()
        started = time.monotonic()
        deadline = started + max_s
        in_flight: set[asyncio.Task[None]] = set()
        for _ in range(presses):
            while len(in_flight) >= self.concurrent:
                await asyncio.wait(set(in_flight), return_when=asyncio.FIRST_COMPLETED)
            waiting = time.monotonic()
            slot = await self._free_slot(deadline)
            phase.waited_for_room_s += time.monotonic() - waiting
            if slot is None:
                phase.stopped_by = "time" if time.monotonic() >= deadline else "no usable room"
                break
            slot.free.clear()  # taken now, before the press task runs
            task = asyncio.get_running_loop().create_task(self._press(slot, phase), name="press")
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            if time.monotonic() >= deadline:
                phase.stopped_by = "time"
                break
            await asyncio.sleep(random.uniform(0.0, self.gap_s))
        if in_flight:
            await asyncio.wait(set(in_flight))
        phase.seconds = time.monotonic() - started
        return phase

    async def settle(self, timeout_s: float) -> None:
        """Let every room finish its cycle (bounded), so the next phase starts clean."""
        if self._lifecycles:
            await asyncio.wait(set(self._lifecycles), timeout=timeout_s)

    async def _free_slot(self, deadline: float) -> Slot | None:
        while time.monotonic() < deadline:
            usable = [slot for slot in self._order if not slot.broken]
            if not usable:
                return None
            for offset in range(len(self._order)):
                slot = self._order[(self._next + offset) % len(self._order)]
                if not slot.broken and slot.free.is_set():
                    self._next = (self._next + offset + 1) % len(self._order)
                    return slot
            await asyncio.sleep(0.002)
        return None

    async def _press(self, slot: Slot, phase: Phase) -> None:
        loop = asyncio.get_running_loop()
        slot.free.clear()
        press = Press(0.0, loop.create_future(), loop.create_future(), loop.create_future())
        slot.press = press
        press.pressed_at = time.monotonic()
        slot.room.act("panic.press")
        phase.presses += 1
        deadline = press.pressed_at + self.timeout_s
        alert_id: int | None = None
        alert_at: float | None = None
        missed_ms = self.timeout_s * 1000  # a miss counts as the timeout in the percentiles
        with contextlib.suppress(TimeoutError):
            alert_at, alert_id = await asyncio.wait_for(press.mqtt, deadline - time.monotonic())
        phase.mqtt_ms.append(
            missed_ms if alert_at is None else (alert_at - press.pressed_at) * 1000
        )
        hook_at: float | None = None
        with contextlib.suppress(TimeoutError):
            hook_at = await asyncio.wait_for(press.hook, max(0.0, deadline - time.monotonic()))
        phase.hook_ms.append(missed_ms if hook_at is None else (hook_at - press.pressed_at) * 1000)
        if press.alarm.done():
            alarm_at = press.alarm.result()
            phase.alarm_ms.append((alarm_at - press.pressed_at) * 1000)
            if alert_at is not None:
                phase.collector_ms.append((alert_at - alarm_at) * 1000)
        phase.missed_mqtt += alert_at is None
        phase.missed_hook += hook_at is None
        slot.press = None
        slot.alert_id = alert_id
        task = loop.create_task(self._finish_cycle(slot, alert_id, phase), name="press-cycle")
        self._lifecycles.add(task)
        task.add_done_callback(self._lifecycles.discard)

    async def _finish_cycle(self, slot: Slot, alert_id: int | None, phase: Phase) -> None:
        if alert_id is not None:
            url = f"{self.collector}/api/v1/alerts/{alert_id}/ack"
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.http.post(url, json={"by": "bench"}) as reply:
                    await reply.read()
        released = time.monotonic()
        slot.room.act("panic.release")
        if alert_id is None:
            slot.broken = True  # no alert to follow: never press this room again
            return
        try:
            await asyncio.wait_for(slot.free.wait(), self.timeout_s * 6)
            phase.cycle_s.append(time.monotonic() - released)
        except TimeoutError:
            slot.broken = True
            log.warning("alert_probe.cycle_timeout device=%s", slot.room.device_id)


async def _settled(rooms: list[SimulatedRoom], timeout_s: float) -> None:
    """Every agent connected and its start-up events acknowledged."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = [room.agent.state for room in rooms]
        if all(s is not None and s.link.connected and s.outbox.depth == 0 for s in states):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the rooms did not connect and settle in time")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    temporary.replace(path)


async def run(args: argparse.Namespace) -> None:
    rooms = [
        SimulatedRoom(
            room_config(
                RoomSpec(device_id, "bench", f"alert-room-{index}"),
                broker_url=args.broker,
                collector_url=args.collector,
                data_dir=(args.agents_dir or args.data) / device_id,
            )
        )
        for index, device_id in enumerate(args.devices.split(","))
    ]
    loop = asyncio.get_running_loop()
    stop, go = asyncio.Event(), asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, go.set)
    tracker = Tracker({room.device_id: Slot(room) for room in rooms})
    host, port = args.broker.removeprefix("mqtt://").rsplit(":", 1)
    receiver = StampedReceiver(args.secret_file.read_bytes().strip(), port=args.webhook_port)
    receiver.on_alert = tracker.on_hook
    await receiver.start()
    subscriber = await AsyncSubscriber.connect(
        host,
        int(port),
        [(ALERTS_TOPIC, 0), (ALARM_FILTER, 0)],
        tracker.on_mqtt,
        client_id="bench-alert-subscriber",
    )
    try:
        for room in rooms:
            await room.start()
        await _settled(rooms, 60.0)
        phases = loop.create_task(_phases(args, tracker, go), name="phases")
        await _either(stop, phases)  # a SIGTERM ends the phases wherever they are
        phases.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await phases
        await stop.wait()
    finally:
        subscriber.close()
        await receiver.stop()
        await asyncio.gather(*(room.stop() for room in rooms), return_exceptions=True)


async def _phases(args: argparse.Namespace, tracker: Tracker, go: asyncio.Event) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        cycler = Cycler(tracker, http, args.collector, args.timeout_s, args.gap_s)
        await cycler.run(len(tracker.slots), 30.0)  # untimed: every room through one cycle
        cycler.concurrent = args.concurrent
        await cycler.settle(args.timeout_s * 2)
        _write_json(args.data / "ready.json", {"rooms": len(tracker.slots)})
        idle = await cycler.run(args.idle, args.idle_max_s)
        await cycler.settle(args.timeout_s * 2)
        _write_json(args.data / "idle.json", idle.as_json())
        await go.wait()
        loaded = await cycler.run(args.loaded, args.loaded_max_s)
        _write_json(args.data / "loaded.json", loaded.as_json())


async def _either(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    """Until ``stop`` is set or ``task`` ends."""
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    failure = task.exception() if task.done() and not task.cancelled() else None
    if failure is not None:
        raise failure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.alert_probe", description=__doc__)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--collector", required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument(
        "--agents-dir", type=Path, help="the agents' data directories (default: under --data)"
    )
    parser.add_argument("--devices", required=True, help="comma-separated enrolled device ids")
    parser.add_argument("--webhook-port", type=int, required=True)
    parser.add_argument("--secret-file", type=Path, required=True)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--idle-max-s", type=float, default=120.0)
    parser.add_argument("--loaded", type=int, default=1000)
    parser.add_argument("--loaded-max-s", type=float, default=60.0)
    parser.add_argument("--timeout-s", type=float, default=10.0)
    parser.add_argument(
        "--concurrent", type=int, default=4, help="presses (in different rooms) awaited at once"
    )
    parser.add_argument("--gap-s", type=float, default=0.01, help="random pause between presses")
    args = parser.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
