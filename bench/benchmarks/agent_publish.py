"""The agent's publish path: CPU seconds of the agent process per event driven from the outbox
through the sender and paho to the broker, until the collector (present, the device enrolled) has
acknowledged every one and the outbox has settled them, against ``mosquitto_pub -l -q 1``
publishing the same payloads (one line each) to the same broker, per CPU second of each process.
A second row divides the same figure by paho-mqtt alone publishing those payloads at QoS 1
(``bench/pahopub.py``): the floor of any agent built on paho, so the two rows together say how
much of the cost is the library and how much is ours.

The agent's CPU is measured by the agent process itself (``getrusage``, all threads) from waking
the sender until the outbox is empty; ``mosquitto_pub``'s by ``wait4``. Committing the events to
the outbox (one fsync'd transaction each) happens before and is reported apart.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from bench.agent import start_probe
from bench.core import BenchContext, BenchError, Goal, Quantity, Row
from bench.rig import start_broker, start_collector
from bench.tools import cpu_seconds, require, spawn, wait_with_rusage

DEVICE = "bench-agent-burst"
REFERENCE_TOPIC = "bench/publish-reference"


@dataclass(frozen=True)
class AgentPublishPath:
    name: str = "agent-publish"
    description: str = (
        "agent CPU per event outbox -> sender -> paho -> broker (acked by the collector) "
        "vs mosquitto_pub -l -q 1"
    )

    def run(self, ctx: BenchContext) -> list[Row]:
        events = ctx.scale(5000, 300)  # mosquitto_pub -l -q 1 loses lines past 65,535
        timeout = float(ctx.scale(180, 60))
        broker = start_broker(ctx)
        collector = start_collector(ctx, broker, [DEVICE])
        dump = ctx.workdir / "burst.lines"
        probe = start_probe(ctx, broker, collector, DEVICE, burst=events, dump=dump)
        result = probe.result("burst.json", timeout)
        if result["published"] < events:
            raise BenchError(f"the agent published {result['published']} of {events} events")
        agent_cpu = float(result["publish_cpu_s"])
        references = [self._mosquitto_pub(ctx, broker.host, broker.port, dump) for _ in range(2)]
        reference_cpu = min(references)
        paho_runs = [self._paho_alone(ctx, broker.host, broker.port, dump) for _ in range(2)]
        paho_cpu = min(paho_runs)
        return [
            Row(
                name="agent publish path",
                figure=Quantity(events / agent_cpu, "msg/CPU-s", "agent, until acked"),
                reference=Quantity(events / reference_cpu, "msg/CPU-s", "mosquitto_pub -q 1"),
                goal=Goal(">=", 0.15),
                details={
                    "events": events,
                    "collector": "present (acks)",
                    "agent_cpu_s": round(agent_cpu, 3),
                    "agent_cpu_us_per_event": round(agent_cpu / events * 1e6, 1),
                    "agent_wall_s": round(float(result["publish_s"]), 3),
                    "agent_resent": int(result["resent"]),
                    "commit_s": round(float(result["commit_s"]), 3),
                    "commit_cpu_us_per_event": round(
                        float(result["commit_cpu_s"]) / events * 1e6, 1
                    ),
                    "mosquitto_pub_cpu_s": ", ".join(f"{cpu:.3f}" for cpu in references),
                },
            ),
            Row(
                name="agent publish vs paho alone",
                figure=Quantity(events / agent_cpu, "msg/CPU-s", "agent, until acked"),
                reference=Quantity(events / paho_cpu, "msg/CPU-s", "paho-mqtt alone, QoS 1"),
                details={
                    "paho_cpu_us_per_event": round(paho_cpu / events * 1e6, 1),
                    "paho_cpu_s": ", ".join(f"{cpu:.3f}" for cpu in paho_runs),
                    "paho_vs_mosquitto_pub": round(reference_cpu / paho_cpu, 3),
                },
            ),
        ]

    @staticmethod
    def _paho_alone(ctx: BenchContext, host: str, port: int, lines: Path) -> float:
        process = spawn(
            ctx.cleanup,
            [
                sys.executable,
                *("-m", "bench.pahopub", "--host", host, "--port", str(port)),
                *("--topic", REFERENCE_TOPIC, "--lines", str(lines)),
            ],
            log_path=ctx.workdir / "tools.log",
        )
        code, usage = wait_with_rusage(process, timeout=120.0)
        if code != 0:
            raise BenchError(f"bench.pahopub exited with status {code}")
        return max(cpu_seconds(usage), 1e-6)

    @staticmethod
    def _mosquitto_pub(ctx: BenchContext, host: str, port: int, lines: Path) -> float:
        process = spawn(
            ctx.cleanup,
            [
                require("mosquitto_pub"),
                *("-h", host, "-p", str(port), "-t", REFERENCE_TOPIC, "-q", "1", "-l"),
            ],
            log_path=ctx.workdir / "tools.log",
            stdin_path=lines,
        )
        code, usage = wait_with_rusage(process, timeout=60.0)
        if code != 0:
            raise BenchError(f"mosquitto_pub exited with status {code}")
        return max(cpu_seconds(usage), 1e-6)


BENCHMARK = AgentPublishPath()
