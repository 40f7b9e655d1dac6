"""Showing times to people: in the site's zone, with the zone said.

Everything on the wire and in the database is aware UTC (ISO 8601 with ``+00:00``); consoles and
tables show the site's local time instead, and say which zone that is. The zone is configured
(``--timezone``, env ``CUSTOS_TIMEZONE``), Asia/Shanghai by default. Standard library only, so
both sides and the simulators can use it.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Shanghai"
TIMEZONE_ENV = "CUSTOS_TIMEZONE"


class LocalTimeError(ValueError):
    """An unknown time zone name, or a time that is not ISO 8601."""


def load_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``Asia/Shanghai``, ``UTC``); a clear error for a wrong name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise LocalTimeError(
            f"unknown time zone {name!r} (an IANA name such as {DEFAULT_TIMEZONE} or UTC)"
        ) from exc


def zone_argument(name: str) -> ZoneInfo:
    """``type=`` of a ``--timezone`` option: argparse prints the message for a wrong name."""
    try:
        return load_zone(name)
    except LocalTimeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_timezone_option(
    parser: argparse.ArgumentParser, *, shows: str = "times", purpose: str | None = None
) -> None:
    """``--timezone ZONE`` (env ``CUSTOS_TIMEZONE``; default Asia/Shanghai) on ``parser``; its
    help says that ``shows`` are shown in it, or else says ``purpose``. The environment is read
    when the parser is built, as every option's default is."""
    what = purpose or f"IANA time zone that {shows} are shown in, with its offset"
    parser.add_argument(
        "--timezone",
        metavar="ZONE",
        type=zone_argument,
        default=os.environ.get(TIMEZONE_ENV) or DEFAULT_TIMEZONE,
        help=f"{what} (env {TIMEZONE_ENV}; default %(default)s)",
    )


def parse_moment(value: datetime | str) -> datetime:
    """An aware datetime from a datetime or an ISO 8601 string. A time without an offset is
    taken as UTC: that is what the collector and the agents store."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise LocalTimeError(f"not an ISO 8601 time: {value!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def offset_text(moment: datetime) -> str:
    """``+08:00``: the UTC offset of an aware datetime."""
    offset = moment.utcoffset()
    if offset is None:
        raise LocalTimeError("a naive datetime has no offset")
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def zone_label(zone: ZoneInfo, at: datetime) -> str:
    """``Asia/Shanghai, UTC+08:00``: the zone's name and its offset at ``at``."""
    return f"{zone.key}, UTC{offset_text(parse_moment(at).astimezone(zone))}"


def local_clock(value: datetime | str, zone: ZoneInfo, *, seconds: bool = True) -> str:
    """``20:33:32`` in ``zone``: for a console whose heading says the zone."""
    moment = parse_moment(value).astimezone(zone)
    return moment.strftime("%H:%M:%S" if seconds else "%H:%M")


def local_stamp(value: datetime | str | None, zone: ZoneInfo, *, empty: str = "-") -> str:
    """``2026-12-03 20:33:32 +08:00`` in ``zone``, or ``empty`` for no time: for tables."""
    if value is None or value == "":
        return empty
    moment = parse_moment(value).astimezone(zone)
    return f"{moment:%Y-%m-%d %H:%M:%S} {offset_text(moment)}"
