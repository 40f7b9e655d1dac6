"""The board's real pin factory, chosen explicitly (never gpiozero's global default)."""

from __future__ import annotations

from typing import Any


class NoPinFactoryError(RuntimeError):
    pass


def default_pin_factory() -> Any:
    """lgpio (Pi 5 and current Raspberry Pi OS), then RPi.GPIO, then gpiozero's native driver."""
    errors = []
    try:
        from gpiozero.pins.lgpio import LGPIOFactory

        return LGPIOFactory()
    except Exception as exc:  # each driver fails differently off its board
        errors.append(f"lgpio: {exc}")
    try:
        from gpiozero.pins.rpigpio import RPiGPIOFactory

        return RPiGPIOFactory()
    except Exception as exc:
        errors.append(f"RPi.GPIO: {exc}")
    try:
        from gpiozero.pins.native import NativeFactory

        return NativeFactory()
    except Exception as exc:
        errors.append(f"native: {exc}")
    raise NoPinFactoryError(
        "no GPIO driver works on this machine (" + "; ".join(errors) + "); "
        "install the 'pi' extra on a Raspberry Pi, or run the simulator (custos-sim)"
    )
