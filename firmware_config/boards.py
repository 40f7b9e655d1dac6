"""Board profiles: which GPIO numbers exist and which are better left alone.

Pins in the device config are BCM GPIO numbers, as gpiozero uses them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    gpio: frozenset[int]
    avoid: dict[int, str]
    """Pins that work but have another usual job; using one is a warning, not an error."""


_PI_40_PIN_AVOID = {
    0: "ID EEPROM (ID_SD)",
    1: "ID EEPROM (ID_SC)",
    2: "I2C SDA (RTC or sensor bus)",
    3: "I2C SCL (RTC or sensor bus)",
    14: "UART TX (serial console)",
    15: "UART RX (serial console)",
}

BOARDS: dict[str, Board] = {
    board.name: board
    for board in (
        Board("rpi3", "Raspberry Pi 3 (40-pin header)", frozenset(range(28)), _PI_40_PIN_AVOID),
        Board("rpi4", "Raspberry Pi 4 (40-pin header)", frozenset(range(28)), _PI_40_PIN_AVOID),
        Board("rpi5", "Raspberry Pi 5 (40-pin header)", frozenset(range(28)), _PI_40_PIN_AVOID),
        Board("cm4", "Compute Module 4 on an IO board", frozenset(range(46)), _PI_40_PIN_AVOID),
        Board("sim", "Simulated board (gpiozero MockFactory)", frozenset(range(64)), {}),
    )
}
