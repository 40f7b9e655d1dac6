"""Debounce in our own code: gpiozero's mock pins do not bounce, so we make them."""

from __future__ import annotations

from edge_agent.hw.gpio import GpioInputs
from edge_agent.sensing.inputs import InputWatcher
from firmware_config.schema import InputConfig, InputRole
from protocol.clock import ManualClock
from protocol.messages import InputEvent
from simulators.pins import wired_factory


def _door() -> dict[str, InputConfig]:
    return {
        "door": InputConfig(role=InputRole.DOOR, pin=17, active="high", pull="up", debounce_ms=50)
    }


async def test_a_bouncing_contact_gives_exactly_one_event() -> None:
    clock = ManualClock()
    factory = wired_factory()
    pin = factory.pin(17)
    pin.wire(False)  # door closed: the reed contact holds the pin low
    events: list[InputEvent] = []
    watcher_ref: list[InputWatcher] = []
    inputs = GpioInputs(_door(), factory, lambda name, active: watcher_ref[0].edge(name, active))
    watcher = InputWatcher(_door(), clock, inputs.open(), events.append)
    watcher_ref.append(watcher)
    try:
        for level in (True, False, True, False, True, False, True):  # chatter, ends open
            pin.wire(level)
            await clock.advance(0.003)
        assert events == []  # nothing until the contact has been still for 50 ms
        await clock.advance(0.049)
        assert events == []
        await clock.advance(0.002)
        assert [event.type.value for event in events] == ["door.opened"]
        await clock.advance(5)
        assert len(events) == 1
    finally:
        watcher.close()
        inputs.close()


async def test_a_glitch_shorter_than_the_debounce_time_is_ignored() -> None:
    clock = ManualClock()
    factory = wired_factory()
    pin = factory.pin(17)
    pin.wire(False)
    events: list[InputEvent] = []
    watcher_ref: list[InputWatcher] = []
    inputs = GpioInputs(_door(), factory, lambda name, active: watcher_ref[0].edge(name, active))
    watcher = InputWatcher(_door(), clock, inputs.open(), events.append)
    watcher_ref.append(watcher)
    try:
        pin.wire(True)
        await clock.advance(0.02)
        pin.wire(False)
        await clock.advance(1)
        assert events == []
        assert watcher.state("door") is False
    finally:
        watcher.close()
        inputs.close()
