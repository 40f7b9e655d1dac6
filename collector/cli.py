"""custos-collector: run the collector, or talk to a running one (devices, faults,
maintenance)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from collector import __version__
from collector.commands import devices, faults, reports
from collector.commands.client import CommandError
from protocol.logsetup import add_logging_options, configure_logging


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _retention_days(value: str) -> int:
    from collector.evidence.retention import MINIMUM_RETENTION_DAYS

    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {value!r}") from None
    if days < MINIMUM_RETENTION_DAYS:
        raise argparse.ArgumentTypeError(
            f"must be at least {MINIMUM_RETENTION_DAYS} (recordings are kept at least a year), "
            f"not {days}"
        )
    return days


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="custos-collector",
        description="The Custos collector: MQTT ingest, device health, API and reports.",
    )
    parser.add_argument("--version", action="version", version=f"custos-collector {__version__}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do"
    )

    serve = commands.add_parser(
        "serve",
        help="run the collector",
        description="Run the collector. Settings come from --config FILE, then the environment, "
        "then these options (each wins over the one before).",
    )
    serve.add_argument(
        "--config",
        type=Path,
        default=_env("CUSTOS_CONFIG"),
        help="TOML settings file, e.g. deploy/collector.toml (env CUSTOS_CONFIG)",
    )
    serve.add_argument(
        "--broker",
        default=_env("CUSTOS_BROKER"),
        help="MQTT broker URL (env CUSTOS_BROKER; default mqtt://127.0.0.1:1883)",
    )
    for option, field, what in (
        ("--broker-ca", "broker_ca_file", "with mqtts: the CA of the broker's certificate"),
        ("--broker-cert", "broker_cert_file", "with mqtts: our client certificate (PEM)"),
        ("--broker-key", "broker_key_file", "the key of --broker-cert (PEM)"),
    ):
        variable = f"CUSTOS_{field.upper()}"
        serve.add_argument(
            option,
            dest=field,
            type=Path,
            metavar="FILE",
            default=_env(variable),
            help=f"{what} (env {variable})",
        )
    serve.add_argument(
        "--http",
        default=_env("CUSTOS_HTTP"),
        help="HTTP listen address HOST:PORT (env CUSTOS_HTTP; default 127.0.0.1:8080)",
    )
    serve.add_argument(
        "--data",
        type=Path,
        default=_env("CUSTOS_DATA"),
        help="data directory: database and recordings (env CUSTOS_DATA; default custos-data)",
    )
    serve.add_argument(
        "--registry",
        type=Path,
        default=_env("CUSTOS_REGISTRY"),
        help="TOML file of devices to enroll at start, [[devices]] tables (env CUSTOS_REGISTRY)",
    )
    serve.add_argument(
        "--client-id",
        default=_env("CUSTOS_CLIENT_ID"),
        help="MQTT client id prefix (env CUSTOS_CLIENT_ID; default custos-collector)",
    )
    serve.add_argument(
        "--admin-token-file",
        type=Path,
        default=_env("CUSTOS_ADMIN_TOKEN_FILE"),
        help="file holding the token that state-changing API requests must present "
        "(env CUSTOS_ADMIN_TOKEN_FILE)",
    )
    serve.add_argument(
        "--retention-days",
        type=_retention_days,
        default=_env("CUSTOS_RETENTION_DAYS"),
        help="keep recordings at least this many days, never fewer than 365 "
        "(env CUSTOS_RETENTION_DAYS; default 365)",
    )
    add_logging_options(serve)

    devices.add_parsers(commands)
    faults.add_parsers(commands)
    reports.add_parsers(commands)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from collector.app import create_app
    from collector.runner import serve
    from collector.settings import SettingsError, load_settings

    overrides: dict[str, Any] = {
        "broker": args.broker,
        "broker_ca_file": args.broker_ca_file,
        "broker_cert_file": args.broker_cert_file,
        "broker_key_file": args.broker_key_file,
        "data_dir": args.data,
        "client_id": args.client_id,
        "registry_file": args.registry,
        "retention_days": args.retention_days,
    }
    if args.http:
        host, _, port = args.http.rpartition(":")
        overrides |= {"http_host": host or "127.0.0.1", "http_port": port}
    if args.admin_token_file:
        overrides["admin_token"] = Path(args.admin_token_file).read_text(encoding="utf-8").strip()
    try:
        settings = load_settings(args.config, overrides)
    except SettingsError as exc:
        print(f"custos-collector serve: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_level, args.log_format)
    # 1 when the collector stopped because it could not go on (its database writer ended): a
    # non-zero exit is what makes systemd restart it.
    return asyncio.run(
        serve(create_app(settings), settings.http_host, settings.http_port, shutdown_timeout=5.0)
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    try:
        code: int = args.handler(args)
    except CommandError as exc:
        print(f"custos-collector {args.command}: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
