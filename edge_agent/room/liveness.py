"""Sensors that behave as if broken.

- A PIR that never fires while the door keeps opening (people come and go, nobody is seen).
- An input stuck active: a door "open" for hours, a panic button held, a lid that never closes.

Each is reported once per episode; the episode ends when the sensor behaves again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware_config.schema import InputRole


@dataclass(frozen=True)
class Suspicion:
    input: str
    reason: str


@dataclass
class SensorLiveness:
    door_cycles_without_motion: int
    stuck_active_s: float
    pir_inputs: tuple[str, ...] = ()
    _cycles: int = 0
    _pir_reported: bool = False
    _active_since: dict[str, float] = field(default_factory=dict)
    _stuck_reported: set[str] = field(default_factory=set)

    def changed(self, name: str, role: InputRole, active: bool, now: float) -> list[Suspicion]:
        found: list[Suspicion] = []
        if active:
            self._active_since[name] = now
        else:
            self._active_since.pop(name, None)
            self._stuck_reported.discard(name)
        if role is InputRole.PIR and active:
            self._cycles = 0
            self._pir_reported = False
        elif role is InputRole.DOOR and active and self.pir_inputs:
            self._cycles += 1
            if self._cycles >= self.door_cycles_without_motion and not self._pir_reported:
                self._pir_reported = True
                found.extend(
                    Suspicion(pir, f"no motion across {self._cycles} door openings")
                    for pir in self.pir_inputs
                )
        return found

    def tick(self, now: float) -> list[Suspicion]:
        found = []
        for name, since in self._active_since.items():
            if name not in self._stuck_reported and now - since >= self.stuck_active_s:
                self._stuck_reported.add(name)
                found.append(Suspicion(name, f"active for {now - since:.0f} s without a change"))
        return found

    def next_deadline(self) -> float | None:
        pending = [
            since + self.stuck_active_s
            for name, since in self._active_since.items()
            if name not in self._stuck_reported
        ]
        return min(pending, default=None)
