"""Component health on the agent: probes for the heartbeat, verdicts that become events."""

from edge_agent.health.board import HealthBoard, HealthProbe

__all__ = ["HealthBoard", "HealthProbe"]
