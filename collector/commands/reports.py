"""``report``: the daily bulletin and periodic reports, from a running collector or straight from
its database (so a supervisor can have one even while the collector is down)."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import urllib.parse
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from collector.commands.client import ApiClient, CommandError, add_connection_options
from collector.reports.compute import build_report
from collector.reports.period import Period, PeriodKind
from collector.reports.render import to_csv, to_html
from collector.store.database import DB_FILE
from protocol.localtime import add_timezone_option


def add_parsers(commands: Any) -> None:
    report = commands.add_parser(
        "report", help="the daily bulletin, weekly, biweekly and monthly reports"
    )
    report.add_argument(
        "kind",
        choices=[kind.value for kind in PeriodKind],
        help="daily is the bulletin (一日一通报); the others cover their period",
    )
    report.add_argument(
        "--date", type=date.fromisoformat, help="any day of the period (default today)"
    )
    report.add_argument("--site", help="one site only (default: every site, and the fleet)")
    report.add_argument(
        "--format",
        choices=("json", "csv", "html"),
        default="html",
        help="html to print or send, csv for a spreadsheet, json for programs "
        "(default %(default)s)",
    )
    report.add_argument(
        "--lang", choices=("zh", "en"), default="zh", help="language of the HTML report"
    )
    report.add_argument("--out", type=Path, help="write to this file (default: standard output)")
    report.add_argument(
        "--data", type=Path, help="read the collector's data directory directly instead of its API"
    )
    add_timezone_option(
        report,
        purpose="with --data: the IANA time zone whose days the periods are "
        "(online, the collector's own)",
    )
    add_connection_options(report)
    report.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    kind = PeriodKind(args.kind)
    text = _offline(args, kind) if args.data else _online(args, kind)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _online(args: argparse.Namespace, kind: PeriodKind) -> str:
    query = {"format": args.format, "lang": args.lang}
    if args.date:
        query["date"] = args.date.isoformat()
    if args.site:
        query["site"] = args.site
    client = ApiClient.from_args(args)
    if args.format == "json":
        return (
            json.dumps(
                client.get(f"/api/v1/reports/{kind.value}?{urllib.parse.urlencode(query)}"),
                indent=2,
            )
            + "\n"
        )
    return client.get_text(f"/api/v1/reports/{kind.value}?{urllib.parse.urlencode(query)}")


def _offline(args: argparse.Namespace, kind: PeriodKind) -> str:
    path = args.data / DB_FILE
    if not path.exists():
        raise CommandError(f"no collector database at {path}")
    zone: ZoneInfo = args.timezone
    now = datetime.now(zone)
    period = Period.containing(kind, args.date or now.date(), zone.key)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        report = build_report(db, period, now, args.site)
    if args.format == "json":
        return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    if args.format == "csv":
        return to_csv(report)
    return to_html(report, args.lang)
