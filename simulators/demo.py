"""custos-demo: a private Mosquitto, the collector on its embedded defaults and a simulated site of
three rooms playing a scenario; prints where to look and what arrives; Ctrl-C stops it all."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import sys
import threading
import urllib.error
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from protocol.clock import SystemClock
from protocol.localtime import add_timezone_option
from simulators.broker import BrokerError, MosquittoBroker, free_port
from simulators.demo_console import AlertFeed, Console, EventFeed, FaultFeed, RecordingFeed
from simulators.procs import CollectorProcess, ProcessError, SimProcess

DATA_ENV = "CUSTOS_DEMO_DATA"


def _port_or_free(port: int) -> int:
    """``port`` if it is free, else (or for 0) any free one."""
    if port == 0:
        return free_port()
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="custos-demo",
        description="A private Mosquitto, the collector on its embedded defaults and a simulated "
        "site of three rooms playing a scenario; prints where to look and what arrives. "
        "Ctrl-C stops it all.",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get(DATA_ENV) or "demo-data"),
        help=f"where everything is kept (env {DATA_ENV}; default %(default)s)",
    )
    parser.add_argument("--fresh", action="store_true", help="delete the data directory first")
    parser.add_argument(
        "--rooms", type=int, default=3, help="simulated rooms (default %(default)s)"
    )
    parser.add_argument(
        "--scenario", default="demo", help="built-in scenario or TOML file (default %(default)s)"
    )
    parser.add_argument(
        "--mqtt-port",
        type=int,
        default=18830,
        help="broker port; a free one if it is taken or 0 (default %(default)s)",
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=8080,
        help="collector HTTP port; a free one if it is taken or 0 (default %(default)s)",
    )
    parser.add_argument(
        "--duration", type=float, help="stop by itself after this many seconds (default: never)"
    )
    add_timezone_option(parser, shows="the console's times")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print debug lines: every recorded segment as the collector commits it",
    )
    return parser


def _banner(broker: MosquittoBroker, collector: CollectorProcess, data: Path, heading: str) -> str:
    api = collector.url
    return f"""
Custos demo is running.

  Command center    {api}/        (中文; English: {api}/?lang=en)
  Collector API     {api}/api/v1/devices
  One device        {api}/api/v1/devices/demo-ir1
  Its events        {api}/api/v1/devices/demo-ir1/events
  Health, metrics   {api}/healthz   {api}/metrics
  Quarantine        {api}/api/v1/quarantine
  Open alerts       {api}/api/v1/alerts?state=open
  Alerts, live      curl -N {api}/api/v1/alerts/stream
  Acknowledge one   curl -X POST {api}/api/v1/alerts/ID/ack -d '{{"by": "your name"}}'
  MQTT traffic      mosquitto_sub -p {broker.port} -t 'custos/#' -v
  Logs and data     {data.resolve()}/

  Fault queue       {api}/api/v1/faults?state=active
  Daily bulletin    {api}/api/v1/reports/daily?format=html

Events as the collector commits them (recorded segments as counts per device; every one with
--verbose), alerts as the command center receives them on custos/v1/alerts, and faults as they
open and restore. {heading} Ctrl-C stops everything.
"""


def _print_line(line: str) -> None:
    print(line, flush=True)


def _processes(
    args: argparse.Namespace, data: Path
) -> tuple[MosquittoBroker, CollectorProcess, SimProcess]:
    broker = MosquittoBroker(data / "broker", port=_port_or_free(args.mqtt_port), persistence=True)
    collector = CollectorProcess(
        broker.url,
        data / "collector",
        port=_port_or_free(args.http_port),
        extra=["--config", str(Path(__file__).with_name("demo-collector.toml"))],
    )
    sim = SimProcess(
        broker.url, collector.url, data / "sim", rooms=args.rooms, site="demo",
        scenario=args.scenario, extra=["--repeat"],
    )  # fmt: skip
    return broker, collector, sim


def _last_line(log: str) -> str:
    """What a process said last (the exception, after a traceback)."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(it logged nothing)"


def _watch(
    polls: tuple[Callable[[], None], ...],
    processes: tuple[SimProcess, CollectorProcess],
    stop: threading.Event,
    deadline: Callable[[], bool],
    data: Path,
) -> int:
    """Poll the feeds once a second until Ctrl-C, the deadline, or a process that died."""
    while not stop.wait(1.0):
        dead = [process for process in processes if not process.running]
        if dead:
            for process in dead:
                print(
                    f"{process.log_path.name.removesuffix('.log')} exited unexpectedly: "
                    f"{_last_line(process.log_text())}",
                    file=sys.stderr,
                )
            print(f"see the logs in {data}/", file=sys.stderr)
            return 1
        with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
            for poll in polls:
                poll()
        if deadline():
            break
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data: Path = args.data
    if args.fresh and data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    clock = SystemClock()
    console = Console(_print_line, args.timezone, verbose=args.verbose)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    broker, collector, sim = _processes(args, data)
    alerts: AlertFeed | None = None
    recordings: RecordingFeed | None = None
    faults: FaultFeed | None = None
    try:
        print(f"starting Mosquitto on 127.0.0.1:{broker.port} …", flush=True)
        broker.start()
        print(f"starting the collector on {collector.url} …", flush=True)
        collector.start()
        collector.wait_healthy()
        print(f"starting {args.rooms} simulated rooms playing '{args.scenario}' …", flush=True)
        sim.start()
        print(_banner(broker, collector, data, console.heading(clock.now())), flush=True)
        faults = FaultFeed(collector.url, console, clock)
        alerts = AlertFeed(broker.port, console)
        recordings = RecordingFeed(collector.url, console, clock)
        ends = clock.monotonic() + args.duration if args.duration else float("inf")
        code = _watch(
            (EventFeed(collector.url, console).poll, faults.poll, recordings.poll),
            (sim, collector),
            stop,
            lambda: clock.monotonic() > ends,
            data,
        )
        if code:
            return code
    except (BrokerError, ProcessError) as exc:
        print(f"custos-demo: {exc}", file=sys.stderr)
        return 1
    finally:
        print("\nstopping the simulated rooms, the collector and Mosquitto …", flush=True)
        if alerts is not None:
            alerts.stop()
        sim.stop()
        for summary in (recordings, faults):
            if summary is not None:
                summary.summary()
        collector.stop()
        broker.stop()
    print(f"stopped. Everything is kept in {data}/ (use --fresh to start over).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
