"""The repair SLA and how faults are judged."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class FaultPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    respond_s: Annotated[float, Field(ge=60, le=7 * 86_400)] = 3600.0
    """The technical department responds (acknowledges) within this long: 1 hour."""
    restore_s: Annotated[float, Field(ge=60, le=90 * 86_400)] = 24 * 3600.0
    """Monitoring is restored within this long, unless the site says otherwise."""
    site_restore_s: dict[str, Annotated[float, Field(ge=60, le=90 * 86_400)]] = Field(
        default_factory=dict
    )
    stable_s: Annotated[float, Field(ge=0, le=86_400)] = 300.0
    """A fault is restored only after the device has reported the component healthy this long."""
    reopen_window_s: Annotated[float, Field(ge=0, le=7 * 86_400)] = 1800.0
    """A fault that comes back within this long after its restoration re-opens (same clocks)."""
    grace_s: Annotated[float, Field(ge=0, le=3600)] = 60.0
    """After the collector starts or reconnects to the broker, new faults wait this long: a mass
    reconnect is not a storm of faults."""
    stopped_after_s: Annotated[float, Field(ge=0, le=86_400)] = 600.0
    """A device cleanly stopped this long (not a quick restart) is a fault."""

    def restore_for(self, site: str | None) -> float:
        return self.site_restore_s.get(site or "", self.restore_s)
