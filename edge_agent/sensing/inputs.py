"""From debounced input changes to room events."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from edge_agent.sensing.debounce import Debouncer
from firmware_config.schema import InputConfig, InputRole
from protocol.clock import Clock
from protocol.messages import ComponentHealth, ComponentKind, ComponentState, InputEvent
from protocol.messages import InputEventType as T

EVENT_FOR_CHANGE: dict[InputRole, tuple[T, T]] = {
    # role: (event when it becomes active, event when it becomes inactive)
    InputRole.DOOR: (T.DOOR_OPENED, T.DOOR_CLOSED),
    InputRole.PIR: (T.PRESENCE_DETECTED, T.PRESENCE_CLEARED),
    InputRole.PANIC: (T.PANIC_PRESSED, T.PANIC_RESET),
    InputRole.TAMPER: (T.TAMPER_OPENED, T.TAMPER_CLOSED),
}


class InputWatcher:
    """Debounces every input and emits one event per real change."""

    def __init__(
        self,
        specs: Mapping[str, InputConfig],
        clock: Clock,
        initial: Mapping[str, bool],
        emit: Callable[[InputEvent], object],
        on_change: Callable[[str, bool], object] | None = None,
    ) -> None:
        self._specs = dict(specs)
        self._clock = clock
        self._emit = emit
        self._on_change = on_change
        self._last_change: dict[str, float] = {}
        self._started = clock.monotonic()
        self._debouncers = {
            name: Debouncer(
                name, spec.debounce_ms / 1000.0, clock, initial.get(name, False), self._changed
            )
            for name, spec in self._specs.items()
        }

    def edge(self, name: str, active: bool) -> None:
        debouncer = self._debouncers.get(name)
        if debouncer is not None:
            debouncer.feed(active)

    def state(self, name: str) -> bool:
        return self._debouncers[name].stable

    def health(self, name: str) -> ComponentHealth:
        """An input has no health of its own here (that is the liveness logic's job); the
        heartbeat says how long ago it last changed."""
        changed = self._last_change.get(name, self._started)
        return ComponentHealth(
            kind=ComponentKind.INPUT,
            state=ComponentState.OK,
            age_s=max(0.0, self._clock.monotonic() - changed),
        )

    def close(self) -> None:
        for debouncer in self._debouncers.values():
            debouncer.close()

    def _changed(self, name: str, active: bool) -> None:
        self._last_change[name] = self._clock.monotonic()
        on_active, on_inactive = EVENT_FOR_CHANGE[self._specs[name].role]
        self._emit(InputEvent(type=on_active if active else on_inactive, input=name))
        if self._on_change is not None:
            self._on_change(name, active)
