"""``custos-agent``: run the agent of one room, or check a device config file."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from edge_agent import __version__
from firmware_config.loader import ConfigError, check_config, load_config
from protocol.logsetup import add_logging_options, configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="custos-agent",
        description="The Custos edge agent: watches one custody room and reports to the collector.",
    )
    parser.add_argument("--version", action="version", version=f"custos-agent {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do"
    )

    run = commands.add_parser(
        "run",
        help="run the agent for the room described by CONFIG",
        description="Run the agent for the room described by CONFIG until SIGTERM or Ctrl-C.",
    )
    run.add_argument(
        "config",
        type=Path,
        nargs="?",
        default=os.environ.get("CUSTOS_AGENT_CONFIG"),
        metavar="CONFIG",
        help="device config file (TOML) (env CUSTOS_AGENT_CONFIG)",
    )
    run.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("CUSTOS_AGENT_DATA"),
        help="override storage.data_dir of the config (env CUSTOS_AGENT_DATA)",
    )
    add_logging_options(run)

    check = commands.add_parser(
        "check-config",
        help="validate device config files; print every problem with its field path",
        description="Validate device config files; print every problem with its field path. "
        "Exits 1 if any file is invalid.",
    )
    check.add_argument(
        "files", type=Path, nargs="+", metavar="FILE", help="device config file (TOML)"
    )
    return parser


def _check(files: list[Path]) -> int:
    failed = False
    for path in files:
        config, issues = check_config(path)
        for issue in issues:
            print(f"{path}: {issue}", file=sys.stderr if issue.severity == "error" else sys.stdout)
        if config is None:
            failed = True
            errors = sum(1 for issue in issues if issue.severity == "error")
            print(f"{path}: INVALID ({errors} error{'s' if errors != 1 else ''})", file=sys.stderr)
        else:
            warnings = len(issues)
            note = f" with {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
            print(
                f"{path}: OK{note} — device {config.device.id}, site {config.device.site}, "
                f"room {config.device.room} ({config.device.room_kind.value}), "
                f"config hash {config.config_hash()[:12]}"
            )
    return 1 if failed else 0


async def _run(config_path: Path, data_dir: Path | None) -> int:
    from edge_agent.wiring import build_agent

    config = load_config(config_path)
    agent = build_agent(config, data_dir=data_dir)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await agent.run(stop)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return _check(args.files)
    configure_logging(args.log_level, args.log_format)
    if args.config is None:
        print(
            "custos-agent run: a config file is required (or CUSTOS_AGENT_CONFIG)", file=sys.stderr
        )
        return 2
    try:
        return asyncio.run(_run(args.config, args.data_dir))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
