"""Device health and the repair SLA: faults that open by themselves, response and restore clocks,
maintenance windows, and restoration only by the device's own telemetry."""
