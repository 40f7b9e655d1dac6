"""Agent footprint: resident memory and CPU of one room's agent process (``bench.agent_probe``),
idle (heartbeat every 10 s) and busy (heartbeat every 1 s), connected to a broker and a collector
that has it enrolled. The memory reference is the same Python interpreter started and left idle;
the CPU reference is the least work doing the same job (``bench.footprint_floor``): paho-mqtt
alone publishing the same heartbeat at the same interval, and for the recording agent PyAV alone
encoding the same streams in real time as well.

With the agent's recorder in the tree (the hook: ``bench.agent_probe.recorder_available``),
a third agent runs busy with it, recording synthetic cameras and microphones in an occupied room;
without it, or if that agent cannot start, the row says why and the other rows still count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.agent import (
    MB,
    Footprint,
    sample,
    start_bare_interpreter,
    start_heartbeat_floor,
    start_media_floor,
    start_probe,
)
from bench.agent_probe import recorder_available
from bench.core import BenchContext, BenchError, Goal, Quantity, Row
from bench.procstat import cpu_of
from bench.rig import start_broker, start_collector

IDLE, BUSY, RECORDER = "bench-agent-idle", "bench-agent-busy", "bench-agent-recorder"
RSS_GOAL_MB = 60.0
PAHO_FLOOR = "paho alone, same heartbeats"
MEDIA_FLOOR = "paho + PyAV alone, same streams"
NO_RECORDER = "no synthetic-media recorder in the tree (hook: bench.agent_probe)"


@dataclass(frozen=True)
class AgentFootprint:
    name: str = "agent-footprint"
    description: str = (
        "one room's agent process: VmRSS and CPU s/hour, idle (hb 10 s) and busy (hb 1 s)"
    )

    def run(self, ctx: BenchContext) -> list[Row]:
        window = float(ctx.scale(30, 4))
        broker = start_broker(ctx)
        collector = start_collector(ctx, broker, [IDLE, BUSY, RECORDER])
        bare = start_bare_interpreter(ctx)
        idle = start_probe(ctx, broker, collector, IDLE, heartbeat_s=10.0)
        busy = start_probe(ctx, broker, collector, BUSY, heartbeat_s=1.0)
        floors = {
            "floor-idle": start_heartbeat_floor(ctx, broker, 10.0),
            "floor-busy": start_heartbeat_floor(ctx, broker, 1.0),
        }
        targets = {
            "bare": (bare.pid, lambda: cpu_of(bare.pid).total_s),
            "idle": (idle.pid, idle.cpu_s),
            "busy": (busy.pid, busy.cpu_s),
        }
        recorder_problem = NO_RECORDER
        if recorder_available():
            try:
                recorder = start_probe(
                    ctx, broker, collector, RECORDER, heartbeat_s=1.0, recorder=True
                )
            except BenchError as exc:  # the idle and busy rows still count
                recorder_problem = f"the recording agent did not start: {exc}"[:300]
            else:
                targets["recorder"] = (recorder.pid, recorder.cpu_s)
                floors["floor-media"] = start_media_floor(ctx)
        for name, floor_probe in floors.items():
            targets[name] = (floor_probe.pid, floor_probe.cpu_s)
        with_recorder = "recorder" in targets
        time.sleep(1.0)  # past start-up work (imports done, first heartbeat sent)
        ctx.log(f"    sampling {len(targets)} processes for {window:g} s")
        samples = sample(targets, window)
        floor = samples["bare"]
        paho_idle, paho_busy = samples["floor-idle"], samples["floor-busy"]
        rows = [
            _rss_row("agent RSS idle (hb 10 s)", samples["idle"], floor, goal=True),
            _cpu_row("agent CPU idle (hb 10 s)", samples["idle"], paho_idle, PAHO_FLOOR),
            _rss_row("agent RSS busy (hb 1 s)", samples["busy"], floor),
            _cpu_row("agent CPU busy (hb 1 s)", samples["busy"], paho_busy, PAHO_FLOOR),
        ]
        name = "agent busy + synthetic recorder"
        if with_recorder:
            both = _sum(paho_busy, samples["floor-media"])
            rows += [
                _rss_row(f"{name} RSS", samples["recorder"], floor),
                _cpu_row(f"{name} CPU", samples["recorder"], both, MEDIA_FLOOR),
            ]
        else:
            rows.append(Row(name, Quantity(float("nan"), "", ""), skipped=recorder_problem))
        return rows


def _rss_row(name: str, agent: Footprint, floor: Footprint, *, goal: bool = False) -> Row:
    return Row(
        name,
        Quantity(agent.rss_bytes / MB, "MB", "VmRSS"),
        Quantity(floor.rss_bytes / MB, "MB", "bare python"),
        Goal("<=", RSS_GOAL_MB, on="figure", unit="MB") if goal else None,
        details={"peak_rss_mb": round(agent.peak_rss_bytes / MB, 1), "window_s": agent.window_s},
    )


def _cpu_row(name: str, agent: Footprint, floor: Footprint, floor_name: str) -> Row:
    return Row(
        name,
        Quantity(agent.cpu_s_per_hour, "CPU s/h", "getrusage"),
        Quantity(floor.cpu_s_per_hour, "CPU s/h", floor_name),
        details={
            "cpu_s": round(agent.cpu_s, 3),
            "window_s": round(agent.window_s, 2),
            "percent_of_one_core": round(agent.cpu_s / agent.window_s * 100, 2),
        },
    )


def _sum(first: Footprint, second: Footprint) -> Footprint:
    """Two floor processes counted as one: the CPU both spent over the same window."""
    return Footprint(
        first.rss_bytes + second.rss_bytes,
        first.peak_rss_bytes + second.peak_rss_bytes,
        first.cpu_s + second.cpu_s,
        max(first.window_s, second.window_s),
    )


BENCHMARK = AgentFootprint()
