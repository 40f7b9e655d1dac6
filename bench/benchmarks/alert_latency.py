"""Alert latency: a panic press on a gpiozero mock pin in a simulated room running the real agent
code, to the alert's ``raised`` transition at a plain MQTT subscriber on ``custos/v1/alerts`` and
at a signed webhook receiver (an ``[[alerts.webhooks]]`` endpoint of the collector's settings
file) — idle, and while heartbeats of many enrolled devices are offered at twice what the
collector was just measured to ingest of them.

Everything timed runs in one probe process (``bench.alert_probe``): the rooms, the subscriber and
the receiver share one event loop and one ``time.monotonic()``; a press is stamped just before the
mock pin changes. Up to four presses, in different rooms, at a time; each room goes press →
raised → acknowledged through the API → release → cleared before it is pressed again (see the
probe). The reference of the idle
figure is the agent's own ``panic.pressed`` at the same plain subscriber (debounce, outbox
commit, paho, broker: everything but the collector); the loaded figures are compared with the
idle ones. The loaded phase is bounded in time as well as in count: a slow path shows as fewer
presses. The broker has the production queue limit (``max_queued_messages 200000``,
deploy/mosquitto/custos.conf), so the overload is bounded as on a site.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.agent import wait_json
from bench.configured import Webhook, settings_toml, start_configured_collector
from bench.core import BenchContext, BenchError, Goal, JsonScalar, Quantity, Row
from bench.heartbeat_load import HeartbeatLoad
from bench.procstat import cpu_of
from bench.rig import scrape, total
from bench.stats import percentile, summary
from bench.tools import spawn
from simulators.broker import MosquittoBroker, free_port
from simulators.procs import CollectorProcess

ROOMS = 128
"""Under load a room can be pressed again only once the collector has ingested its reset (an
ordinary event, behind the heartbeat backlog: tens of seconds): enough rooms that presses rarely
wait for one."""
LOAD_FACTOR = 2.0
RAMP_S = 3.0
P99_BUDGET_MS = 100.0
LOADED_OVER_IDLE = 20.0
SINKS = (("MQTT", "mqtt_ms"), ("webhook", "hook_ms"))
COUNTERS = {
    "committed": "custos_heartbeats_committed_total",
    "commits": "custos_ingest_batches_total",
    "commit_s": "custos_ingest_batch_seconds_total",
    "messages": "custos_messages_in_total",
}


@dataclass(frozen=True)
class Rig:
    broker: MosquittoBroker
    collector: CollectorProcess
    load: HeartbeatLoad
    probe: subprocess.Popen[bytes]
    data: Path


@dataclass(frozen=True)
class AlertLatency:
    name: str = "alert-latency"
    description: str = (
        "panic press on a mock pin -> raised alert on MQTT and at a webhook, idle and under "
        "2x ingest capacity (p50/p99)"
    )

    def run(self, ctx: BenchContext) -> list[Row]:
        presses = ctx.scale(1000, 40)
        idle_max_s, loaded_max_s = float(ctx.scale(150, 40)), float(ctx.scale(60, 12))
        rig = _start(ctx, presses, idle_max_s, loaded_max_s)
        wait_json(rig.data / "ready.json", rig.probe, 90.0)
        idle = wait_json(rig.data / "idle.json", rig.probe, idle_max_s + 60.0)
        ctx.log(f"    idle: {_line(idle)}")
        if not idle["mqtt_ms"]:
            raise BenchError("no panic press raised an alert, idle")
        capacity = rig.load.capacity(ctx, rig.broker, rig.collector, timeout_s=ctx.scale(120, 60))
        rate = LOAD_FACTOR * capacity.per_s
        ctx.log(f"    capacity {capacity.per_s:,.0f} msg/s; offering {rate:,.0f} msg/s")
        publisher = rig.load.offer(ctx, rig.broker, rate, RAMP_S + loaded_max_s + 45.0)
        time.sleep(RAMP_S)  # the writer's backlog builds: every batch is full from here on
        before = scrape(rig.collector.url)
        probe_cpu = cpu_of(rig.probe.pid).total_s
        rig.probe.send_signal(signal.SIGUSR1)
        loaded = wait_json(rig.data / "loaded.json", rig.probe, loaded_max_s + 90.0)
        probe_cpu = cpu_of(rig.probe.pid).total_s - probe_cpu
        after = scrape(rig.collector.url)
        offered = publisher.stop()
        ctx.log(f"    loaded: {_line(loaded)}; offered {offered.per_s:,.0f} msg/s")
        delta = {key: total(after, name) - total(before, name) for key, name in COUNTERS.items()}
        commits = delta["commits"] or 1.0
        details: dict[str, JsonScalar] = {
            "rooms": _rooms(ctx),
            "load_devices": len(rig.load.loads),
            "capacity_msg_per_s": round(capacity.per_s),
            "offered_msg_per_s": round(offered.per_s),
            "offered_s": round(offered.seconds, 1),
            "ingested_under_load_msg_per_s": round(delta["committed"] / loaded["seconds"]),
            "loaded_writer_commit_ms_mean": round(delta["commit_s"] / commits * 1000, 1),
            "loaded_messages_per_commit": round(delta["messages"] / commits),
            "writer_backlog_at_end": int(total(after, "custos_writer_backlog")),
            "probe_cores_busy_loaded": round(probe_cpu / loaded["seconds"], 2),
            "cycle": "press -> raised -> ack (API) -> release -> cleared",
            **{f"capacity_{key}": value for key, value in capacity.details.items()},
            **_phase_details("idle", idle),
            **_phase_details("loaded", loaded),
        }
        return _rows(idle, loaded, details)


def _rooms(ctx: BenchContext) -> int:
    return ctx.scale(ROOMS, 8)


def _start(ctx: BenchContext, presses: int, idle_max_s: float, loaded_max_s: float) -> Rig:
    """Broker, heartbeat load, collector with the webhook, and the probe (started, not ready)."""
    broker = MosquittoBroker(ctx.subdir("broker"), extra_config=("max_queued_messages 200000",))
    broker.start()
    ctx.cleanup.callback(broker.stop)
    load = HeartbeatLoad.build("hbload", ctx.scale(2000, 500), 30)
    rooms = [f"alert-room-{index:02d}" for index in range(_rooms(ctx))]
    secret = ctx.workdir / "webhook.secret"
    secret.write_text("bench-webhook-secret\n", encoding="utf-8")
    port = free_port()
    hook = Webhook("bench", f"http://127.0.0.1:{port}/hook", str(secret))
    collector = start_configured_collector(
        ctx, broker, rooms + load.device_ids, settings_toml(webhooks=[hook])
    )
    data = ctx.subdir("probe")
    agents = _agents_dir(ctx)
    probe = spawn(
        ctx.cleanup,
        [
            sys.executable,
            *("-m", "bench.alert_probe", "--broker", broker.url, "--collector", collector.url),
            *("--data", str(data), "--agents-dir", str(agents), "--devices", ",".join(rooms)),
            *("--webhook-port", str(port), "--secret-file", str(secret)),
            *("--idle", str(presses), "--idle-max-s", str(idle_max_s)),
            *("--loaded", str(presses), "--loaded-max-s", str(loaded_max_s)),
        ],
        log_path=data / "probe.log",
    )
    return Rig(broker, collector, load, probe, data)


def _agents_dir(ctx: BenchContext) -> Path:
    """The agents' outboxes on tmpfs where there is one: on a site each agent has its own
    storage, while here the collector's commits under load (and other work on this machine)
    share the disk with them and would stall their fsyncs: a cost of this rig, not of the path
    measured. (The agent's own commit cost is measured by ``agent-publish``.)"""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        return ctx.subdir("agents")
    path = Path(tempfile.mkdtemp(prefix="custos-bench-agents-", dir=shm))
    ctx.cleanup.callback(shutil.rmtree, path, True)
    return path


def _line(phase: dict[str, Any]) -> str:
    parts = [f"{phase['presses']} presses in {phase['seconds']:.0f} s"]
    for sink, key in (*SINKS, ("agent", "alarm_ms")):
        samples = phase[key]
        parts.append(
            f"{sink} p50 {percentile(samples, 0.5):.1f} / p99 {percentile(samples, 0.99):.1f} ms"
        )
    return ", ".join(parts)


def _phase_details(name: str, phase: dict[str, Any]) -> dict[str, JsonScalar]:
    details: dict[str, JsonScalar] = {
        f"{name}_presses": phase["presses"],
        f"{name}_missed_mqtt": phase["missed_mqtt"],
        f"{name}_missed_webhook": phase["missed_hook"],
        f"{name}_stopped_by": phase["stopped_by"],
        f"{name}_seconds": phase["seconds"],
        f"{name}_waited_for_room_s": phase["waited_for_room_s"],
    }
    for key in ("mqtt_ms", "hook_ms", "alarm_ms", "collector_ms"):
        for stat, value in summary(phase[key]).items():
            details[f"{name}_{key.removesuffix('_ms')}_{stat}_ms"] = value
    cycles = summary(phase["cycle_s"])
    details[f"{name}_room_cycle_p50_s"] = cycles["p50"]
    details[f"{name}_room_cycle_max_s"] = cycles["max"]
    return details


def _rows(
    idle: dict[str, Any], loaded: dict[str, Any], details: dict[str, JsonScalar]
) -> list[Row]:
    rows: list[Row] = []
    agent_p99 = percentile(idle["alarm_ms"], 0.99)
    for sink, key in SINKS:
        idle_p99 = percentile(idle[key], 0.99)
        missed = loaded["missed_mqtt" if key == "mqtt_ms" else "missed_hook"]
        loaded_fig = Quantity(percentile(loaded[key], 0.99), "ms", _what(loaded[key], missed))
        idle_ref = Quantity(idle_p99, "ms", "idle p99")
        rows += [
            Row(
                f"alert -> {sink} p99, idle",
                Quantity(idle_p99, "ms", _what(idle[key])),
                Quantity(agent_p99, "ms", "agent's panic event at a plain subscriber, p99"),
                details=details if not rows else {},
            ),
            Row(
                f"alert -> {sink} p99, 2x load",
                loaded_fig,
                idle_ref,
                Goal("<=", P99_BUDGET_MS, on="figure", unit="ms"),
            ),
            Row(
                f"alert -> {sink} p99, 2x load / idle",
                loaded_fig,
                idle_ref,
                Goal("<=", LOADED_OVER_IDLE),
            ),
        ]
    return rows


def _what(samples: list[float], missed: int = 0) -> str:
    lost = f", {missed} never came" if missed else ""
    return f"p50 {percentile(samples, 0.5):.0f} ms, n={len(samples)}{lost}"


BENCHMARK = AlertLatency()
