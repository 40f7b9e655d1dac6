"""The agent's composition root: real adapters chosen from the device config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_agent.agent import Agent, AgentOptions
from edge_agent.recording.port import RecorderFactory
from edge_agent.system.clocksync import ClockProbe, KernelClockProbe
from edge_agent.uplink.link import LinkSettings
from firmware_config.schema import AgentConfig
from protocol.clock import Clock, SystemClock


def link_settings(config: AgentConfig) -> LinkSettings:
    url = config.broker.url
    password = None
    if config.broker.password_file is not None:
        password = config.broker.password_file.read_text(encoding="utf-8").strip()
    return LinkSettings(
        host=url.host or "127.0.0.1",
        port=url.port or (8883 if url.scheme == "mqtts" else 1883),
        keepalive_s=config.broker.keepalive_s,
        username=config.broker.username,
        password=password,
        tls=url.scheme == "mqtts",
    )


def build_agent(
    config: AgentConfig,
    *,
    data_dir: Path | None = None,
    clock: Clock | None = None,
    clock_probe: ClockProbe | None = None,
    pin_factory: Any = None,
    recorder_factory: RecorderFactory | None = None,
) -> Agent:
    """An agent for real hardware unless collaborators are given (simulators give their own)."""
    clock = clock or SystemClock()
    if pin_factory is None:
        from edge_agent.hw.pins import default_pin_factory

        pin_factory = default_pin_factory()
    if recorder_factory is None:
        from edge_agent.recording.factory import create_recorder

        recorder_factory = create_recorder
    options = AgentOptions(
        data_dir=data_dir or config.storage.data_dir,
        link=link_settings(config),
        recorder_factory=recorder_factory,
    )
    return Agent(
        config,
        options,
        clock=clock,
        clock_probe=clock_probe or KernelClockProbe(clock),
        pin_factory=pin_factory,
    )
