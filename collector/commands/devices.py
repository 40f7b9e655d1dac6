"""``enroll`` and ``devices``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from collector.commands.client import ApiClient, add_connection_options
from firmware_config.schema import RoomKind
from protocol.localtime import add_timezone_option, local_stamp


def add_parsers(commands: Any) -> None:
    enroll = commands.add_parser("enroll", help="enroll a device (or move it to another room)")
    enroll.add_argument("device_id", help="the device's id, as in its config (device.id)")
    enroll.add_argument("--site", required=True, help="site id, e.g. the police station")
    enroll.add_argument("--room", required=True, help="room id within the site")
    enroll.add_argument(
        "--kind",
        required=True,
        choices=[kind.value for kind in RoomKind],
        help="what the room is used for",
    )
    enroll.add_argument(
        "--name", default="", help="the room's name as people say it, e.g. 询问室一"
    )
    add_connection_options(enroll)
    enroll.set_defaults(handler=_enroll)

    devices = commands.add_parser("devices", help="list devices and their state")
    devices.add_argument(
        "--json", action="store_true", help="print the API's JSON (UTC times with offsets)"
    )
    add_timezone_option(devices, shows="last-seen times")
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
    zone = args.timezone
    print(f"{'DEVICE':<20} {'SITE':<14} {'ROOM':<18} {'STATE':<8} LAST SEEN ({zone.key})")
    for device in reply["devices"]:
        print(
            f"{device['device_id']:<20} {device['site']:<14} {device['room']:<18} "
            f"{device['connection']:<8} {local_stamp(device['last_seen_at'], zone)}"
        )
    return 0
