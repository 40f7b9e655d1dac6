"""``custos-collector``: run the collector, or talk to a running one (enroll, list devices)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from collector import __version__
from firmware_config.schema import RoomKind
from protocol.logsetup import configure_logging

DEFAULT_URL = "http://127.0.0.1:8080"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="custos-collector",
        description="The Custos collector: MQTT ingest, device health, API and reports.",
    )
    parser.add_argument("--version", action="version", version=f"custos-collector {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
        help="file holding the token that state-changing API requests must present",
    )
    serve.add_argument("--log-level", default=_env("CUSTOS_LOG_LEVEL", "info"))
    serve.add_argument(
        "--log-format", choices=("json", "text"), default=_env("CUSTOS_LOG_FORMAT", "text")
    )

    def add_url(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--url",
            default=_env("CUSTOS_URL", DEFAULT_URL),
            help="the collector's base URL (env CUSTOS_URL; default %(default)s)",
        )
        sub.add_argument(
            "--token",
            default=_env("CUSTOS_ADMIN_TOKEN"),
            help="admin token (env CUSTOS_ADMIN_TOKEN)",
        )

    enroll = commands.add_parser("enroll", help="enroll a device (or move it to another room)")
    enroll.add_argument("device_id")
    enroll.add_argument("--site", required=True)
    enroll.add_argument("--room", required=True)
    enroll.add_argument("--kind", required=True, choices=[kind.value for kind in RoomKind])
    enroll.add_argument("--name", default="")
    add_url(enroll)

    devices = commands.add_parser("devices", help="list devices and their state")
    devices.add_argument("--json", action="store_true", help="print the API's JSON")
    add_url(devices)
    return parser


def _request(url: str, token: str | None, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, {"error": {"message": exc.reason}}


def _enroll(args: argparse.Namespace) -> int:
    body = {
        "device_id": args.device_id,
        "site": args.site,
        "room": args.room,
        "room_kind": args.kind,
        "name": args.name,
    }
    try:
        status, reply = _request(f"{args.url.rstrip('/')}/api/v1/devices", args.token, body)
    except OSError as exc:
        print(f"custos-collector enroll: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if status >= 400:
        print(
            f"custos-collector enroll: refused ({status}): {reply['error']['message']}",
            file=sys.stderr,
        )
        return 1
    verb = "enrolled" if reply.get("created") else "updated"
    print(f"{verb} {args.device_id}: site {args.site}, room {args.room} ({args.kind})")
    return 0


def _devices(args: argparse.Namespace) -> int:
    try:
        status, reply = _request(f"{args.url.rstrip('/')}/api/v1/devices", args.token)
    except OSError as exc:
        print(f"custos-collector devices: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if status >= 400:
        print(f"custos-collector devices: {reply['error']['message']}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(reply, indent=2, ensure_ascii=False))
        return 0
    print(f"{'DEVICE':<20} {'SITE':<14} {'ROOM':<18} {'STATE':<8} LAST SEEN")
    for device in reply["devices"]:
        print(
            f"{device['device_id']:<20} {device['site']:<14} {device['room']:<18} "
            f"{device['connection']:<8} {device['last_seen_at'] or '-'}"
        )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from collector.app import create_app
    from collector.settings import SettingsError, load_settings

    overrides: dict[str, Any] = {
        "broker": args.broker,
        "data_dir": args.data,
        "client_id": args.client_id,
        "registry_file": args.registry,
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
    web.run_app(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        print=lambda message: print(message, file=sys.stderr),
        access_log=None,
        shutdown_timeout=5.0,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "enroll":
        return _enroll(args)
    return _devices(args)


if __name__ == "__main__":
    sys.exit(main())
