"""``faults`` (the crew's queue) and ``maintenance`` (planned work)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta
from typing import Any

from collector.commands.client import ApiClient, CommandError, add_connection_options


def add_parsers(commands: Any) -> None:
    faults = commands.add_parser("faults", help="the fault queue: list, show, ack, assign, note")
    actions = faults.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="faults, newest first")
    listing.add_argument(
        "--state", default="active", choices=("active", "open", "acknowledged", "restored")
    )
    listing.add_argument("--site")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_list)
    show = actions.add_parser("show", help="one fault with its history")
    show.add_argument("fault_id", type=int)
    show.set_defaults(handler=_show)
    ack = actions.add_parser("ack", help="acknowledge: the response the SLA asks for")
    ack.add_argument("fault_id", type=int)
    ack.add_argument("--by", required=True)
    ack.set_defaults(handler=_ack)
    assign = actions.add_parser("assign", help="give a fault to someone")
    assign.add_argument("fault_id", type=int)
    assign.add_argument("--to", required=True, dest="assignee")
    assign.add_argument("--by", required=True)
    assign.set_defaults(handler=_assign)
    note = actions.add_parser("note", help="add a note")
    note.add_argument("fault_id", type=int)
    note.add_argument("--by", required=True)
    note.add_argument("--text", required=True)
    note.set_defaults(handler=_note)
    for parser in (listing, show, ack, assign, note):
        add_connection_options(parser)

    maintenance = commands.add_parser("maintenance", help="planned work: list, add, cancel windows")
    steps = maintenance.add_subparsers(dest="action", required=True, metavar="ACTION")
    windows = steps.add_parser("list", help="windows not over yet")
    windows.add_argument("--all", action="store_true", help="past and cancelled ones too")
    windows.set_defaults(handler=_windows)
    add = steps.add_parser("add", help="plan work on devices or a whole site")
    target = add.add_mutually_exclusive_group(required=True)
    target.add_argument("--device", action="append", dest="devices", metavar="DEVICE_ID")
    target.add_argument("--site")
    add.add_argument("--from", dest="starts", help="start (ISO 8601, default now)")
    length = add.add_mutually_exclusive_group(required=True)
    length.add_argument("--until", help="end (ISO 8601)")
    length.add_argument("--hours", type=float, help="or: how long from the start")
    add.add_argument("--reason", required=True)
    add.add_argument("--by", required=True)
    add.set_defaults(handler=_add_window)
    cancel = steps.add_parser("cancel", help="end a window now")
    cancel.add_argument("window_id", type=int)
    cancel.add_argument("--by", required=True)
    cancel.set_defaults(handler=_cancel_window)
    for parser in (windows, add, cancel):
        add_connection_options(parser)


def _when(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"not a date and time: {text!r} (use ISO 8601, e.g. 2026-11-21T22:00+08:00)"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def _list(args: argparse.Namespace) -> int:
    query = f"?state={args.state}" + (f"&site={args.site}" if args.site else "")
    reply = ApiClient.from_args(args).get(f"/api/v1/faults{query}")
    if args.json:
        print(json.dumps(reply, indent=2, ensure_ascii=False))
        return 0
    print(
        f"{'ID':>5} {'STATE':<13} {'SEV':<9} {'DEVICE':<14} {'COMPONENT':<13} "
        f"{'RESPOND BY':<20} RESTORE BY"
    )
    for fault in reply["faults"]:
        print(
            f"{fault['id']:>5} {fault['state']:<13} {fault['severity']:<9} "
            f"{fault['device_id']:<14} {fault['component']:<13} "
            f"{(fault['respond_by'] or '-')[:19]:<20} {(fault['restore_by'] or '-')[:19]}"
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
    print(f"{'ID':>4} {'TARGET':<20} {'FROM':<26} {'UNTIL':<26} REASON")
    for window in reply["windows"]:
        target = window["device_id"] or f"site {window['site']}"
        print(
            f"{window['id']:>4} {target:<20} {window['starts_at']:<26} {window['ends_at']:<26} "
            f"{window['reason']}"
        )
    return 0


def _add_window(args: argparse.Namespace) -> int:
    starts = _when(args.starts) if args.starts else datetime.now().astimezone()
    ends = _when(args.until) if args.until else starts + timedelta(hours=args.hours)
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
