"""Offline detection: from a silent failure of a room's agent (SIGSTOP of a ``custos-sim run
--rooms 1`` process: its TCP connection stays open and says nothing) to a ``device_offline``
fault open at the collector (``GET /api/v1/faults?state=active``), divided by the agent's MQTT
keepalive; and from a crash with a closed socket (SIGKILL) to the same fault, in seconds.

The collector may learn of the silence from the broker (the agent's Last Will) or by itself (no
heartbeat for 1.5 × the keepalive the agent announced); whichever comes first opens the fault.
Each trial is its own agent process and device (a fault stays open until the device has been
healthy for ``stable_s``, so a device cannot be failed twice in a row); the silent failures are
spread evenly over one heartbeat period and run concurrently (see ``_schedule``). The
collector's ``faults.grace_s`` is set short in its settings file and is over before the first
trial. When the broker's Last Will reaches a plain subscriber is measured in the same trials, for
comparison (Mosquitto 2.0 checks keepalives only every 6 s, so its Will comes 1.5 × keepalive +
up to 7 s after the last packet).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from bench.configured import settings_toml, start_configured_collector
from bench.core import BenchContext, BenchError, Goal, JsonScalar, Quantity, Row
from bench.offline_watch import FaultWatch, WillWatch
from bench.rig import start_broker
from simulators.procs import CollectorProcess, SimProcess, http_json

GRACE_S = 2.0
CRASH_SPACING_S = 0.8
SILENT_GOAL = 1.6
CRASH_GOAL_S = 1.0


@dataclass
class Trial:
    kind: str
    """``silent`` (SIGSTOP) or ``crash`` (SIGKILL)."""
    sim: SimProcess
    device_id: str
    due: float = 0.0
    failed_at: float | None = None


@dataclass
class Results:
    seconds: list[float] = field(default_factory=list)
    will_s: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class OfflineDetection:
    name: str = "offline-detection"
    description: str = (
        "agent frozen (SIGSTOP) -> device_offline fault, / keepalive; agent killed -> fault, s"
    )

    def run(self, ctx: BenchContext) -> list[Row]:
        keepalive = ctx.scale(10, 5)
        broker = start_broker(ctx)
        collector = start_configured_collector(ctx, broker, [], settings_toml(grace_s=GRACE_S))
        started = time.monotonic()
        trials = [
            self._trial(ctx, broker.url, collector.url, kind, index, keepalive)
            for kind, count in (("silent", ctx.scale(8, 2)), ("crash", ctx.scale(3, 1)))
            for index in range(count)
        ]
        _wait_online(collector, trials, timeout_s=120.0)
        time.sleep(max(0.0, started + GRACE_S + 1.0 - time.monotonic()))
        wills = WillWatch(broker)
        wills.start()
        ctx.cleanup.callback(wills.close)
        faults = FaultWatch(collector.url)
        _schedule(trials, time.monotonic() + 0.5, keepalive)
        for trial in trials:
            wills.arm(trial.device_id)
        deadline = trials[-1].due + 2.5 * keepalive + 20.0
        _play(trials, faults, deadline)
        # The broker's own verdict, for comparison: its Last Will, which may come later.
        wills.wait([trial.device_id for trial in trials], deadline)
        results = {kind: _results(trials, kind, faults, wills) for kind in ("silent", "crash")}
        details: dict[str, JsonScalar] = {
            "keepalive_s": keepalive,
            "grace_s": GRACE_S,
            "fault_polls": faults.polls,
            "poll_interval_s": faults.interval_s,
        }
        for kind, result in results.items():
            details[f"{kind}_s"] = ", ".join(f"{value:.2f}" for value in result.seconds)
            details[f"{kind}_broker_will_s"] = ", ".join(f"{value:.2f}" for value in result.will_s)
        for kind in results:
            ctx.log(
                f"    {kind}: {details[f'{kind}_s']} s (Will: {details[f'{kind}_broker_will_s']})"
            )
        return _rows(results, keepalive, details)

    @staticmethod
    def _trial(
        ctx: BenchContext, broker: str, collector: str, kind: str, index: int, keepalive: int
    ) -> Trial:
        site = f"{kind}{index}"
        sim = SimProcess(
            broker,
            collector,
            ctx.subdir(f"sim-{site}") / "data",
            rooms=1,
            site=site,
            extra=[
                *("--keepalive", str(keepalive), "--heartbeat", str(keepalive)),
                *("--media", "simulated", "--log-level", "warning"),
            ],
        )
        sim.start()
        ctx.cleanup.callback(sim.stop)
        return Trial(kind, sim, f"{site}-ir1")


def _schedule(trials: list[Trial], first: float, keepalive: int) -> None:
    """Silent failures spread evenly over one heartbeat period (the agents heartbeat every
    keepalive, started together so in step): the trials sample every point of the period, from
    just after a heartbeat (the worst case) to just before the next. Crashes after them."""
    silent = [trial for trial in trials if trial.kind == "silent"]
    for index, trial in enumerate(silent):
        trial.due = first + index * keepalive / len(silent)
    after = first + keepalive
    for index, trial in enumerate(trial for trial in trials if trial.kind == "crash"):
        trial.due = after + index * CRASH_SPACING_S
    trials.sort(key=lambda trial: trial.due)


def _wait_online(collector: CollectorProcess, trials: list[Trial], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    devices = {trial.device_id for trial in trials}
    online: set[str] = set()
    while time.monotonic() < deadline:
        for trial in trials:
            if not trial.sim.running:
                tail = trial.sim.log_text()[-2000:]
                raise BenchError(f"the simulated agent {trial.device_id} exited:\n{tail}")
        reply = http_json(f"{collector.url}/api/v1/devices?state=online", timeout=5.0)
        online = {device["device_id"] for device in reply["devices"]}
        if online >= devices:
            return
        time.sleep(0.2)
    missing = sorted(set(devices) - online)
    raise BenchError(f"the simulated agents {', '.join(missing)} did not come online in time")


def _play(trials: list[Trial], faults: FaultWatch, deadline: float) -> None:
    """Fail each agent at its time; poll the faults until every one is seen."""
    pending = list(trials)
    while pending or not all(trial.device_id in faults.seen for trial in trials):
        now = time.monotonic()
        if now > deadline:
            break
        while pending and pending[0].due <= now:
            trial = pending.pop(0)
            trial.failed_at = time.monotonic()
            if trial.kind == "silent":
                trial.sim.freeze()
            else:
                trial.sim.kill()
        faults.poll(trial.device_id for trial in trials if trial.failed_at is not None)
        time.sleep(faults.interval_s)
    missing = [trial.device_id for trial in trials if trial.device_id not in faults.seen]
    if missing:
        raise BenchError(f"no device_offline fault for {', '.join(missing)} before the deadline")


def _results(trials: list[Trial], kind: str, faults: FaultWatch, wills: WillWatch) -> Results:
    result = Results()
    for trial in trials:
        if trial.kind != kind or trial.failed_at is None:
            continue
        result.seconds.append(faults.seen[trial.device_id] - trial.failed_at)
        will = wills.seen.get(trial.device_id)
        result.will_s.append(will - trial.failed_at if will is not None else float("nan"))
    return result


def _rows(results: dict[str, Results], keepalive: int, details: dict[str, JsonScalar]) -> list[Row]:
    silent, crash = results["silent"], results["crash"]
    configured = Quantity(float(keepalive), "s", "configured MQTT keepalive")
    n = len(silent.seconds)
    return [
        Row(
            "offline detection, silent (SIGSTOP), median",
            Quantity(statistics.median(silent.seconds), "s", f"to fault open, n={n}"),
            configured,
            Goal("<=", SILENT_GOAL),
            details=details,
        ),
        Row(
            "offline detection, silent (SIGSTOP), worst",
            Quantity(max(silent.seconds), "s", f"to fault open, n={n}"),
            configured,
            Goal("<=", SILENT_GOAL),
        ),
        Row(
            "offline detection, crash (SIGKILL), worst",
            Quantity(max(crash.seconds), "s", f"to fault open, n={len(crash.seconds)}"),
            Quantity(max(crash.will_s), "s", "broker's Last Will at a plain subscriber"),
            Goal("<=", CRASH_GOAL_S, on="figure", unit="s"),
        ),
    ]


BENCHMARK = OfflineDetection()
