"""Is the system clock synchronised? Asked of the kernel with ``adjtimex(2)`` (read-only).

NTP, chrony and systemd-timesyncd all clear ``STA_UNSYNC`` when they discipline the clock; the
kernel's ``maxerror`` says how far off the clock may be.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Protocol

from protocol.clock import Clock
from protocol.messages import ClockState

log = logging.getLogger(__name__)

_STA_UNSYNC = 0x0040
_TIME_ERROR = 5


class _Timeval(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))


class _Timex(ctypes.Structure):
    _fields_ = (
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    )


class ClockProbe(Protocol):
    def state(self) -> ClockState: ...


class KernelClockProbe:
    """Reads the kernel's view, at most once per ``cache_s`` (events ask for it often)."""

    def __init__(self, clock: Clock, cache_s: float = 10.0) -> None:
        self._clock = clock
        self._cache_s = cache_s
        self._cached: tuple[float, ClockState] | None = None
        self._adjtimex: ctypes._NamedFuncPointer | None = None

    def state(self) -> ClockState:
        now = self._clock.monotonic()
        if self._cached is None or now - self._cached[0] >= self._cache_s:
            self._cached = (now, self._read())
        return self._cached[1]

    def _read(self) -> ClockState:
        if self._adjtimex is None:
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            self._adjtimex = libc.adjtimex
        timex = _Timex()
        result = self._adjtimex(ctypes.byref(timex))
        if result < 0:
            log.warning("clock.adjtimex_failed errno=%d", ctypes.get_errno())
            return ClockState(synced=False)
        synced = result != _TIME_ERROR and not timex.status & _STA_UNSYNC
        return ClockState(synced=synced, max_error_ms=max(0, timex.maxerror) / 1000.0)


class FixedClockProbe:
    """A clock state set by the caller: for simulated devices and tests."""

    def __init__(self, synced: bool = True, max_error_ms: float | None = 5.0) -> None:
        self.current = ClockState(synced=synced, max_error_ms=max_error_ms)

    def state(self) -> ClockState:
        return self.current
