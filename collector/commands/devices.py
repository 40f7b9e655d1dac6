"""``enroll`` and ``devices``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from collector.commands.client import ApiClient, add_connection_options
from firmware_config.schema import RoomKind


def add_parsers(commands: Any) -> None:
    enroll = commands.add_parser("enroll", help="enroll a device (or move it to another room)")
    enroll.add_argument("device_id")
    enroll.add_argument("--site", required=True)
    enroll.add_argument("--room", required=True)
    enroll.add_argument("--kind", required=True, choices=[kind.value for kind in RoomKind])
    enroll.add_argument("--name", default="")
    add_connection_options(enroll)
    enroll.set_defaults(handler=_enroll)

    devices = commands.add_parser("devices", help="list devices and their state")
    devices.add_argument("--json", action="store_true", help="print the API's JSON")
    add_connection_options(devices)
    devices.set_defaults(handler=_devices)


def _enroll(args: argparse.Namespace) -> int:
    body = {
        "device_id": args.device_id,
        "site": args.site,
        "room": args.room,
        "room_kind": args.kind,
        "name": args.name,
    }
    reply = ApiClient.from_args(args).post("/api/v1/devices", body)
    verb = "enrolled" if reply.get("created") else "updated"
    print(f"{verb} {args.device_id}: site {args.site}, room {args.room} ({args.kind})")
    return 0


def _devices(args: argparse.Namespace) -> int:
    reply = ApiClient.from_args(args).get("/api/v1/devices")
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
