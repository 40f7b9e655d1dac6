"""``custos-demo``: a private Mosquitto, the collector on its embedded defaults and a simulated site
of three rooms playing a scenario; prints where to look and what arrives; Ctrl-C stops it all."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from simulators.broker import BrokerError, MosquittoBroker, free_port
from simulators.procs import CollectorProcess, ProcessError, SimProcess, http_json


def _port_or_free(port: int) -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="custos-demo", description=__doc__)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("demo-data"),
        help="where everything is kept (default %(default)s)",
    )
    parser.add_argument("--fresh", action="store_true", help="delete the data directory first")
    parser.add_argument(
        "--rooms", type=int, default=3, help="simulated rooms (default %(default)s)"
    )
    parser.add_argument(
        "--scenario", default="demo", help="built-in scenario or TOML file (default %(default)s)"
    )
    parser.add_argument(
        "--mqtt-port", type=int, default=18830, help="broker port (default %(default)s)"
    )
    parser.add_argument(
        "--http-port", type=int, default=8080, help="collector HTTP port (default %(default)s)"
    )
    parser.add_argument("--duration", type=float, help="stop by itself after this many seconds")
    return parser


def _banner(broker: MosquittoBroker, collector: CollectorProcess, data: Path) -> str:
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

Events as the collector commits them, alerts as the command center receives them on
custos/v1/alerts, and faults as they open and restore (Ctrl-C stops everything):
"""


class AlertFeed:
    """Prints each alert transition that arrives on ``custos/v1/alerts``, like a command-center
    client would receive it."""

    def __init__(self, port: int, write: Callable[[str], None]) -> None:
        self._write = write
        self._process = subprocess.Popen(
            ["mosquitto_sub", "-p", str(port), "-q", "1", "-t", "custos/v1/alerts"],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, name="alert-feed", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            with contextlib.suppress(ValueError, KeyError):
                alert = json.loads(line)
                stamp = datetime.fromisoformat(alert["at"]).astimezone().strftime("%H:%M:%S")
                self._write(
                    f"  {stamp}  ALERT #{alert['alert_id']:<4} {alert['transition']:<12} "
                    f"{alert['severity']:<8} {alert['room'] or '-':<16} {alert['title']}"
                )

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait()


class FaultFeed:
    """Prints each fault as it opens, is acknowledged, or restores by itself."""

    def __init__(self, base_url: str, write: Callable[[str], None]) -> None:
        self._base = base_url
        self._write = write
        self._states: dict[int, str] = {}

    def poll(self) -> None:
        faults: list[dict[str, Any]] = http_json(f"{self._base}/api/v1/faults?limit=50")["faults"]
        for fault in reversed(faults):
            if self._states.get(fault["id"]) == fault["state"]:
                continue
            self._states[fault["id"]] = fault["state"]
            when = fault["restored_at"] or fault["acknowledged_at"] or fault["opened_at"]
            stamp = datetime.fromisoformat(when).astimezone().strftime("%H:%M:%S")
            if fault["state"] == "restored":
                self._write(
                    f"  {stamp}  FAULT #{fault['id']:<4} restored by the device's own telemetry"
                )
                continue
            respond = datetime.fromisoformat(fault["respond_by"]).astimezone().strftime("%H:%M")
            self._write(
                f"  {stamp}  FAULT #{fault['id']:<4} {fault['state']:<12} {fault['severity']:<8} "
                f"{fault['device_id']} {fault['component']} {fault['reason'] or ''} "
                f"(respond by {respond})"
            )


class EventFeed:
    """Prints each event once the collector has committed it."""

    def __init__(self, base_url: str, write: Callable[[str], None]) -> None:
        self._base = base_url
        self._write = write
        self._after: dict[str, int] = {}

    def poll(self) -> None:
        devices: list[dict[str, Any]] = http_json(f"{self._base}/api/v1/devices")["devices"]
        for device in devices:
            device_id = device["device_id"]
            after = self._after.get(device_id, 0)
            page = http_json(f"{self._base}/api/v1/devices/{device_id}/events?after_seq={after}")
            for event in page["events"]:
                stamp = (
                    datetime.fromisoformat(event["received_at"]).astimezone().strftime("%H:%M:%S")
                )
                marker = "ALARM " if event["alarm"] else ""
                self._write(
                    f"  {stamp}  {device_id:<10} {device['room']:<16} seq {event['seq']:>4}  "
                    f"{marker}{event['type']}"
                )
            self._after[device_id] = page["next_after_seq"]


class RecordingFeed:
    """Prints, per device, how many recorded segments the collector holds with a signed receipt
    (at most every ``every_s`` per device), and a summary at the end."""

    def __init__(self, base_url: str, write: Callable[[str], None], every_s: float = 15.0) -> None:
        self._base = base_url
        self._write = write
        self._every_s = every_s
        self._shown: dict[str, tuple[int, float]] = {}

    def poll(self, *, final: bool = False) -> None:
        devices: list[dict[str, Any]] = http_json(f"{self._base}/api/v1/devices")["devices"]
        for device in devices:
            device_id = device["device_id"]
            streams = http_json(f"{self._base}/api/v1/segments/{device_id}")["streams"]
            stored = sum(s["uploaded"] for s in streams)
            waiting = sum(s["known"] - s["uploaded"] for s in streams)
            shown, at = self._shown.get(device_id, (0, 0.0))
            now = time.monotonic()
            if not final and (stored == shown or now - at < self._every_s):
                continue
            self._shown[device_id] = (stored, now)
            some = next((s for s in streams if s["uploaded"]), None)
            receipt = (
                f" — e.g. {self._base}/api/v1/segments/{device_id}/{some['stream']}/"
                f"{some['first_seq']}/receipt"
                if some
                else ""
            )
            self._write(
                f"  {datetime.now().astimezone():%H:%M:%S}  {device_id:<10} {device['room']:<16} "
                f"RECORDINGS {stored} segments stored with signed receipts, {waiting} on the way"
                f"{receipt}"
            )

    def summary(self) -> None:
        """What the collector holds in the end, device by device."""
        self._write("recordings at the collector, each with a receipt signed by its key:")
        with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
            self.poll(final=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data: Path = args.data
    if args.fresh and data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
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
    alerts: AlertFeed | None = None
    recordings: RecordingFeed | None = None
    try:
        print(f"starting Mosquitto on 127.0.0.1:{broker.port} …", flush=True)
        broker.start()
        print(f"starting the collector on {collector.url} …", flush=True)
        collector.start()
        collector.wait_healthy()
        print(f"starting {args.rooms} simulated rooms playing '{args.scenario}' …", flush=True)
        sim.start()
        print(_banner(broker, collector, data), flush=True)
        feed = EventFeed(collector.url, lambda line: print(line, flush=True))
        fault_feed = FaultFeed(collector.url, lambda line: print(line, flush=True))
        alerts = AlertFeed(broker.port, lambda line: print(line, flush=True))
        recordings = RecordingFeed(collector.url, lambda line: print(line, flush=True))
        deadline = time.monotonic() + args.duration if args.duration else None
        while not stop.wait(1.0):
            if not sim.running or not collector.running:
                print(
                    f"a demo process exited unexpectedly; see the logs in {data}/", file=sys.stderr
                )
                return 1
            with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
                for poll in (feed.poll, fault_feed.poll, recordings.poll):
                    poll()
            if deadline is not None and time.monotonic() > deadline:
                break
    except (BrokerError, ProcessError) as exc:
        print(f"custos-demo: {exc}", file=sys.stderr)
        return 1
    finally:
        print("\nstopping the simulated rooms, the collector and Mosquitto …", flush=True)
        if alerts is not None:
            alerts.stop()
        sim.stop()
        if recordings is not None:
            recordings.summary()
        collector.stop()
        broker.stop()
    print(f"stopped. Everything is kept in {data}/ (use --fresh to start over).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
