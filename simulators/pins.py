"""gpiozero mock pins with a physical model of what is wired to them.

gpiozero's ``MockPin`` moves to the level of its pull resistor whenever the pull is set; a real
contact to ground or a sensor output wins over the pull. ``WiredPin`` keeps the externally driven
level, so a simulated room can have its door closed *before* the agent claims the pin.
"""

from __future__ import annotations

from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin


class WiredPin(MockPin):  # type: ignore[misc]
    def __init__(self, factory: Any, info: Any) -> None:
        self.wired: bool | None = None
        super().__init__(factory, info)

    def _set_pull(self, value: str) -> None:
        super()._set_pull(value)
        if self.wired is not None:
            self._change_state(self.wired)

    def wire(self, level: bool | None) -> None:
        """Drive the pin high (True) or low (False) from outside; ``None`` leaves it to the pull."""
        self.wired = level
        if level is None:
            self._set_pull(self._pull)
        elif level:
            self.drive_high()
        else:
            self.drive_low()


def wired_factory() -> MockFactory:
    return MockFactory(pin_class=WiredPin)
