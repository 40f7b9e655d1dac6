"""Digital inputs through gpiozero (imported lazily, so ``import edge_agent`` works anywhere).

``pin_factory`` is always passed in: gpiozero's ``MockFactory`` in simulations and tests, the
board's real factory on a Pi. gpiozero calls back on its own thread; ``on_edge`` must only hand the
edge over (``ThreadBridge.post``). No debouncing here: that is room logic, on the injected clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from firmware_config.schema import InputConfig

log = logging.getLogger(__name__)

EdgeCallback = Callable[[str, bool], None]
"""``(input name, active)`` where active means open / motion / pressed, whatever the wiring."""


def _natural_active_high(pull: str) -> bool:
    # With a pull-up gpiozero calls a pin "active" when it reads low; the reverse for pull-down.
    return pull == "down"


class GpioInputs:
    def __init__(
        self, specs: Mapping[str, InputConfig], pin_factory: Any, on_edge: EdgeCallback
    ) -> None:
        self._specs = dict(specs)
        self._factory = pin_factory
        self._on_edge = on_edge
        self._devices: dict[str, Any] = {}
        self._inverted: dict[str, bool] = {}

    def open(self) -> dict[str, bool]:
        """Claim the pins; return each input's current state."""
        from gpiozero import DigitalInputDevice

        for name, spec in self._specs.items():
            if spec.pull == "none":
                device = DigitalInputDevice(
                    spec.pin,
                    pull_up=None,
                    active_state=spec.active == "high",
                    pin_factory=self._factory,
                )
                inverted = False
            else:
                device = DigitalInputDevice(
                    spec.pin, pull_up=spec.pull == "up", pin_factory=self._factory
                )
                inverted = (spec.active == "high") != _natural_active_high(spec.pull)
            self._inverted[name] = inverted
            device.when_activated = self._callback(name, active=not inverted)
            device.when_deactivated = self._callback(name, active=inverted)
            self._devices[name] = device
        return self.read()

    def read(self) -> dict[str, bool]:
        return {
            name: bool(device.is_active) != self._inverted[name]
            for name, device in self._devices.items()
        }

    def close(self) -> None:
        for device in self._devices.values():
            device.close()
        self._devices.clear()

    def _callback(self, name: str, *, active: bool) -> Callable[[], None]:
        def fire() -> None:
            self._on_edge(name, active)

        return fire
