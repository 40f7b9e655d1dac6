"""custos-sim: run simulated rooms (the real agent code on mock pins) against a broker and a
collector, optionally playing a scenario."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

from protocol.clock import SystemClock
from protocol.logsetup import add_logging_options, configure_logging
from simulators.scenario import ScenarioError, builtin_names, load_scenario, play
from simulators.site import EnrollmentError, SiteOptions, build_rooms, enroll_rooms, room_specs

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="custos-sim",
        description="Run simulated rooms (the real agent code on mock pins) against a broker and "
        "a collector, optionally playing a scenario.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do"
    )
    run = commands.add_parser(
        "run",
        help="run N simulated rooms",
        description="Run N simulated rooms until Ctrl-C (or --duration), enrolled with the "
        "collector, optionally playing a scenario.",
    )
    run.add_argument(
        "--broker",
        default=env("CUSTOS_BROKER", "mqtt://127.0.0.1:1883"),
        help="MQTT broker URL (env CUSTOS_BROKER; default %(default)s)",
    )
    run.add_argument(
        "--collector",
        default=env("CUSTOS_URL", "http://127.0.0.1:8080"),
        help="collector base URL, for enrollment (env CUSTOS_URL; default %(default)s)",
    )
    run.add_argument(
        "--data",
        type=Path,
        default=Path(env("CUSTOS_SIM_DATA", "sim-data") or "sim-data"),
        help="data directory of the simulated agents (env CUSTOS_SIM_DATA; default %(default)s)",
    )
    run.add_argument(
        "--site", default="demo", help="site id of the simulated rooms (default %(default)s)"
    )
    run.add_argument("--rooms", type=int, default=3, help="how many rooms (default %(default)s)")
    run.add_argument(
        "--scenario", help="built-in scenario name (see: custos-sim scenarios) or TOML file"
    )
    run.add_argument("--repeat", action="store_true", help="play the scenario again and again")
    run.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: at Ctrl-C)"
    )
    run.add_argument(
        "--keepalive",
        type=int,
        default=10,
        help="MQTT keepalive of each agent, s (default %(default)s)",
    )
    run.add_argument(
        "--heartbeat", type=float, default=10.0, help="heartbeat interval, s (default %(default)s)"
    )
    run.add_argument(
        "--resend-after",
        type=float,
        default=10.0,
        help="resend unacknowledged events after this many s (default %(default)s)",
    )
    run.add_argument(
        "--no-enroll", action="store_true", help="do not enroll the rooms with the collector"
    )
    run.add_argument(
        "--media",
        choices=("synthetic", "simulated"),
        default="synthetic",
        help="synthetic: real H.264/AAC recordings of generated pictures and sound (default); "
        "simulated: recorder events only, no media (light, for large simulated fleets)",
    )
    run.add_argument(
        "--token",
        default=env("CUSTOS_ADMIN_TOKEN"),
        help="the collector's admin token, for enrollment (env CUSTOS_ADMIN_TOKEN)",
    )
    add_logging_options(run)
    commands.add_parser(
        "scenarios",
        help="list the built-in scenarios",
        description="List the built-in scenarios with what each plays.",
    )
    return parser


async def _run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario) if args.scenario else None
    options = SiteOptions(
        broker_url=args.broker,
        collector_url=args.collector,
        data_dir=args.data,
        keepalive_s=args.keepalive,
        heartbeat_s=args.heartbeat,
        resend_after_s=args.resend_after,
        media=args.media,
    )
    rooms = build_rooms(room_specs(args.site, args.rooms), options)
    if not args.no_enroll:
        await enroll_rooms(rooms, args.collector, token=args.token)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    for room in rooms:
        await room.start()
    log.info("sim.running rooms=%s", ",".join(room.device_id for room in rooms))
    clock = SystemClock()

    async def script() -> None:
        while scenario is not None:
            await play(scenario, rooms, clock)
            if not args.repeat:
                break
            await clock.sleep(2.0)

    player = loop.create_task(script(), name="scenario")
    try:
        if args.duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.duration)
        else:
            await stop.wait()
    finally:
        player.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await player
        await asyncio.gather(*(room.stop() for room in rooms))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "scenarios":
        for name in builtin_names():
            scenario = load_scenario(name)
            print(f"{name:<24} {scenario.description}")
        return 0
    configure_logging(args.log_level, args.log_format)
    try:
        return asyncio.run(_run(args))
    except (ScenarioError, EnrollmentError) as exc:
        print(f"custos-sim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
