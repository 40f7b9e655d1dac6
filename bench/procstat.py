"""What the kernel says about a process: CPU seconds and resident memory, from ``/proc``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuSample:
    user_s: float
    system_s: float

    @property
    def total_s(self) -> float:
        return self.user_s + self.system_s


def cpu_of(pid: int) -> CpuSample:
    """User and system CPU seconds of a running process (all its threads), from
    ``/proc/PID/stat``; resolution one clock tick (10 ms)."""
    text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    # Fields 14 and 15 of the man page (utime, stime) are at index 11 and 12 after the name.
    return CpuSample(int(fields[11]) / _CLOCK_TICKS, int(fields[12]) / _CLOCK_TICKS)


def rss_bytes(pid: int) -> int:
    """``VmRSS`` of a running process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for pid {pid}")


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
