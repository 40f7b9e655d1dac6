"""``faults`` (the crew's queue) and ``maintenance`` (planned work)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from collector.commands.client import ApiClient, CommandError, add_connection_options
from protocol.localtime import add_timezone_option, parse_moment, zone_label


def add_parsers(commands: Any) -> None:
    faults = commands.add_parser("faults", help="the fault queue: list, show, ack, assign, note")
    actions = faults.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="what to do with the queue"
    )
    listing = actions.add_parser("list", help="faults, newest first")
    listing.add_argument(
        "--state",
        default="active",
        choices=("active", "open", "acknowledged", "restored"),
        help="active is open or acknowledged (default %(default)s)",
    )
    listing.add_argument("--site", help="one site only (default: every site)")
    listing.add_argument(
        "--json", action="store_true", help="print the API's JSON (UTC times with offsets)"
    )
    add_timezone_option(listing, shows="deadlines")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="one fault with its history, as JSON")
    show.add_argument("fault_id", type=int, help="the fault's number (the ID column of list)")
    show.set_defaults(handler=_show)
    ack = actions.add_parser("ack", help="acknowledge: the response the SLA asks for")
    ack.add_argument("fault_id", type=int, help="the fault's number")
    ack.add_argument("--by", required=True, help="who responds, for the fault's history")
    ack.set_defaults(handler=_ack)
    assign = actions.add_parser("assign", help="give a fault to someone")
    assign.add_argument("fault_id", type=int, help="the fault's number")
    assign.add_argument("--to", required=True, dest="assignee", help="who repairs it")
    assign.add_argument("--by", required=True, help="who assigns it")
    assign.set_defaults(handler=_assign)
    note = actions.add_parser("note", help="add a note")
    note.add_argument("fault_id", type=int, help="the fault's number")
    note.add_argument("--by", required=True, help="who writes the note")
    note.add_argument("--text", required=True, help="the note")
    note.set_defaults(handler=_note)
    for parser in (listing, show, ack, assign, note):
        add_connection_options(parser)

    maintenance = commands.add_parser("maintenance", help="planned work: list, add, cancel windows")
    steps = maintenance.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="what to do with the plan"
    )
    windows = steps.add_parser("list", help="windows not over yet")
    windows.add_argument("--all", action="store_true", help="past and cancelled ones too")
    add_timezone_option(windows, shows="window times")
    windows.set_defaults(handler=_windows)
    add = steps.add_parser("add", help="plan work on devices or a whole site")
    target = add.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--device",
        action="append",
        dest="devices",
        metavar="DEVICE_ID",
        help="a device to work on; repeat for several",
    )
    target.add_argument("--site", help="or: every device of this site")
    add.add_argument(
        "--from",
        dest="starts",
        help="start, ISO 8601; without an offset, in --timezone (default now)",
    )
    length = add.add_mutually_exclusive_group(required=True)
    length.add_argument("--until", help="end, ISO 8601; without an offset, in --timezone")
    length.add_argument("--hours", type=float, help="or: how long from the start")
    add.add_argument("--reason", required=True, help="what the work is, for the crew and reports")
    add.add_argument("--by", required=True, help="who plans it")
    add_timezone_option(add, purpose="IANA time zone of --from and --until without an offset")
    add.set_defaults(handler=_add_window)
    cancel = steps.add_parser("cancel", help="end a window now")
    cancel.add_argument("window_id", type=int, help="the window's number (the ID column of list)")
    cancel.add_argument("--by", required=True, help="who cancels it")
    cancel.set_defaults(handler=_cancel_window)
    for parser in (windows, add, cancel):
        add_connection_options(parser)


def _when(text: str, zone: ZoneInfo) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"not a date and time: {text!r} (use ISO 8601, e.g. 2026-11-21T22:00+08:00)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _minute(value: str | None, zone: ZoneInfo) -> str:
    """``2026-12-03 20:33`` in ``zone``: a deadline to the minute, the zone said above the table."""
    if not value:
        return "-"
    return f"{parse_moment(value).astimezone(zone):%Y-%m-%d %H:%M}"


def _list(args: argparse.Namespace) -> int:
    query = f"?state={args.state}" + (f"&site={args.site}" if args.site else "")
    reply = ApiClient.from_args(args).get(f"/api/v1/faults{query}")
    if args.json:
        print(json.dumps(reply, indent=2, ensure_ascii=False))
        return 0
    zone = args.timezone
    print(f"times in {zone_label(zone, datetime.now(UTC))}")
    print(
        f"{'ID':>5} {'STATE':<13} {'SEV':<9} {'DEVICE':<14} {'COMPONENT':<13} "
        f"{'RESPOND BY':<20} RESTORE BY"
    )
    for fault in reply["faults"]:
        print(
            f"{fault['id']:>5} {fault['state']:<13} {fault['severity']:<9} "
            f"{fault['device_id']:<14} {fault['component']:<13} "
            f"{_minute(fault['respond_by'], zone):<20} {_minute(fault['restore_by'], zone)}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    print(
        json.dumps(
            ApiClient.from_args(args).get(f"/api/v1/faults/{args.fault_id}"),
            indent=2,
            ensure_ascii=False,
        )
    )
    return 0


def _ack(args: argparse.Namespace) -> int:
    ApiClient.from_args(args).post(f"/api/v1/faults/{args.fault_id}/ack", {"by": args.by})
    print(f"fault {args.fault_id} acknowledged by {args.by}")
    return 0


def _assign(args: argparse.Namespace) -> int:
    ApiClient.from_args(args).post(
        f"/api/v1/faults/{args.fault_id}/assign", {"by": args.by, "assignee": args.assignee}
    )
    print(f"fault {args.fault_id} assigned to {args.assignee}")
    return 0


def _note(args: argparse.Namespace) -> int:
    ApiClient.from_args(args).post(
        f"/api/v1/faults/{args.fault_id}/notes", {"by": args.by, "text": args.text}
    )
    print(f"note added to fault {args.fault_id}")
    return 0


def _windows(args: argparse.Namespace) -> int:
    reply = ApiClient.from_args(args).get("/api/v1/maintenance" + ("?all=1" if args.all else ""))
    zone = args.timezone
    print(f"times in {zone_label(zone, datetime.now(UTC))}")
    print(f"{'ID':>4} {'TARGET':<20} {'FROM':<17} {'UNTIL':<17} REASON")
    for window in reply["windows"]:
        target = window["device_id"] or f"site {window['site']}"
        print(
            f"{window['id']:>4} {target:<20} {_minute(window['starts_at'], zone):<17} "
            f"{_minute(window['ends_at'], zone):<17} {window['reason']}"
        )
    return 0


def _add_window(args: argparse.Namespace) -> int:
    zone = args.timezone
    starts = _when(args.starts, zone) if args.starts else datetime.now(zone)
    ends = _when(args.until, zone) if args.until else starts + timedelta(hours=args.hours)
    body: dict[str, Any] = {
        "starts_at": starts.isoformat(),
        "ends_at": ends.isoformat(),
        "reason": args.reason,
        "by": args.by,
    }
    if args.site:
        body["site"] = args.site
    else:
        body["device_ids"] = args.devices
    reply = ApiClient.from_args(args).post("/api/v1/maintenance", body)
    print(
        f"maintenance window{'s' if len(reply['ids']) > 1 else ''} "
        f"{', '.join(map(str, reply['ids']))} planned"
    )
    return 0


def _cancel_window(args: argparse.Namespace) -> int:
    ApiClient.from_args(args).delete(f"/api/v1/maintenance/{args.window_id}", {"by": args.by})
    print(f"maintenance window {args.window_id} cancelled")
    return 0
