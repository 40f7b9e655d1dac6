"""A report as a printable HTML page (Simplified Chinese by default, English on request) or CSV.

Every word a person reads comes in the report's language: the labels here, and the severities,
rule titles, alert details and fault reasons from the one catalogue (``collector.messages``).
Rooms are shown by their registry name with the device id; times in the period's time zone,
with the zone said.
"""

from __future__ import annotations

import csv
import io
from html import escape
from typing import Any, Literal
from zoneinfo import ZoneInfo

from collector.messages import (
    CATALOGUE,
    LIST_SEPARATOR,
    Message,
    device_reason,
    place,
    render,
    word,
)
from collector.reports.compute import LISTED_SEVERITIES
from protocol.localtime import local_stamp, zone_label

Lang = Literal["zh", "en"]

TITLES = {
    "zh": {"daily": "一日一通报", "weekly": "周报", "biweekly": "双周报", "monthly": "月报"},
    "en": {
        "daily": "Daily bulletin",
        "weekly": "Weekly report",
        "biweekly": "Biweekly report",
        "monthly": "Monthly report",
    },
}
LABELS = {
    "zh": {
        "fleet": "全辖区",
        "site": "单位",
        "period": "统计时段",
        "generated": "生成时间",
        "timezone": "时区",
        "incomplete": "（时段尚未结束）",
        "devices": "设备数",
        "faults_opened": "新发故障",
        "faults_restored": "已修复故障",
        "faults_open_at_end": "时段末未修复",
        "in_maintenance": "计划维护期间故障",
        "response": "响应时限（1小时）",
        "restore": "修复时限",
        "met": "达标",
        "breached": "超时",
        "pending": "未到期",
        "mtta": "平均响应时间",
        "mttr": "平均修复时间",
        "availability": "设备在线率",
        "coverage": "在押时段录像覆盖率",
        "upload": "录像上传完整率",
        "alerts": "告警",
        "device": "设备",
        "room": "房间",
        "online": "在线率",
        "faults": "故障",
        "occupied": "在押时长",
        "uncovered": "未覆盖时长",
        "fault_list": "本时段新发故障",
        "alert_list": "本时段紧急和高级别告警",
        "opened": "发生时间",
        "raised": "告警时间",
        "component": "部件",
        "reason": "原因",
        "severity": "级别",
        "state": "状态",
        "alert": "告警",
        "detail": "详情",
        "maintenance": "（计划维护）",
        "listed": "共 {total} 条，仅列出最严重的 {n} 条",
        "hours": "{h} 小时 {m:02d} 分",
        "minutes": "{m} 分钟",
        "none": "—",
    },
    "en": {
        "fleet": "Whole fleet",
        "site": "Site",
        "period": "Period",
        "generated": "Generated",
        "timezone": "Time zone",
        "incomplete": " (period not over)",
        "devices": "Devices",
        "faults_opened": "Faults opened",
        "faults_restored": "Faults restored",
        "faults_open_at_end": "Still open at the end",
        "in_maintenance": "Faults during maintenance",
        "response": "Response SLA (1 h)",
        "restore": "Restore SLA",
        "met": "met",
        "breached": "breached",
        "pending": "pending",
        "mtta": "Mean time to acknowledge",
        "mttr": "Mean time to restore",
        "availability": "Availability",
        "coverage": "Recording coverage of occupied time",
        "upload": "Upload completeness",
        "alerts": "Alerts",
        "device": "Device",
        "room": "Room",
        "online": "Online",
        "faults": "Faults",
        "occupied": "Occupied",
        "uncovered": "Uncovered",
        "fault_list": "Faults opened in the period",
        "alert_list": "Critical and high alerts in the period",
        "opened": "Opened",
        "raised": "Raised",
        "component": "Component",
        "reason": "Reason",
        "severity": "Severity",
        "state": "State",
        "alert": "Alert",
        "detail": "Detail",
        "maintenance": " (planned maintenance)",
        "listed": "{total} in all; only the {n} most severe are listed",
        "hours": "{h} h {m:02d} min",
        "minutes": "{m} min",
        "none": "—",
    },
}


STYLE = (
    "body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}h1{margin-bottom:.2em}.muted{color:#666}"
    ".nowrap{white-space:nowrap}.id{color:#666;font-size:.9em}"
    "@media (max-width:600px){body{margin:.8em}td,th{padding:.25em .4em}"
    "table{display:block;overflow-x:auto;max-width:100%}}"
    "@media print{body{margin:0}}"
)


def _percent(value: float | None, none: str) -> str:
    return none if value is None else f"{value * 100:.1f}%"


def _duration(seconds: float | None, t: dict[str, str]) -> str:
    if seconds is None:
        return t["none"]
    minutes = round(seconds / 60)
    if minutes >= 60:
        return t["hours"].format(h=minutes // 60, m=minutes % 60)
    return t["minutes"].format(m=minutes)


def _summary_rows(summary: dict[str, Any], t: dict[str, str], lang: Lang) -> list[tuple[str, str]]:
    none = t["none"]

    def sla(figures: dict[str, int]) -> str:
        return " · ".join(f"{figures[key]} {t[key]}" for key in ("met", "breached", "pending"))

    alerts = (
        LIST_SEPARATOR[lang].join(
            f"{word(f'severity.{severity}', lang)} {count}"
            for severity, count in summary["alerts"].items()
        )
        or "0"
    )
    return [
        (t["devices"], str(summary["devices"])),
        (t["faults_opened"], str(summary["faults_opened"])),
        (t["faults_restored"], str(summary["faults_restored"])),
        (t["faults_open_at_end"], str(summary["faults_open_at_end"])),
        (t["in_maintenance"], str(summary["faults_opened_in_maintenance"])),
        (t["response"], sla(summary["response_sla"])),
        (t["restore"], sla(summary["restore_sla"])),
        (t["mtta"], _duration(summary["mean_time_to_acknowledge_s"], t)),
        (t["mttr"], _duration(summary["mean_time_to_restore_s"], t)),
        (t["availability"], _percent(summary["availability"], none)),
        (t["coverage"], _percent(summary["recording_coverage"], none)),
        (t["upload"], _percent(summary["upload_completeness"], none)),
        (t["alerts"], alerts),
    ]


class _Cell(str):
    """Markup already escaped (a room name with its id in a smaller type)."""


def _room(name: str, room_id: str) -> _Cell:
    if not name or name == room_id:
        return _Cell(escape(room_id))
    return _Cell(f'{escape(name)} <span class="id">{escape(room_id)}</span>')


def _stored(value: object) -> Message | None:
    return Message.from_json(value) if value else None


_LEGACY_REASONS = {
    "device_offline": Message("fault.offline"),
    "device_stopped": Message("fault.stopped"),
}


def _legacy_reason(fault: dict[str, Any]) -> Message | None:
    """A fault opened before reasons were stored as messages: what its type and reason mean."""
    if fault["type"] in _LEGACY_REASONS:
        return _LEGACY_REASONS[fault["type"]]
    if fault["type"].startswith("component_"):
        return device_reason(fault["reason"], fault["type"].removeprefix("component_"))
    return None


def _nowrap(text: str) -> _Cell:
    return _Cell(f'<span class="nowrap">{escape(text)}</span>')


def _when(moment: str, zone: ZoneInfo) -> _Cell:
    return _nowrap(local_stamp(moment, zone))


def to_html(report: dict[str, Any], lang: Lang = "zh") -> str:
    t = LABELS[lang]
    title = TITLES[lang][report["kind"]]
    period = report["period"]
    timezone = period["timezone"]
    zone = ZoneInfo(timezone)
    html_lang = "zh-CN" if lang == "zh" else "en"
    when = f"{escape(period['label'])} ({escape(zone_label(zone, period['start']))})"
    if not period["complete"]:
        when += escape(t["incomplete"])
    parts = [
        f'<!doctype html><html lang="{html_lang}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">',
        f"<title>{escape(title)} {escape(period['label'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">{escape(t["period"])}: {when} · {escape(t["generated"])}: '
        f"{escape(local_stamp(report['generated_at'], zone))}</p>",
        f"<h2>{escape(t['fleet'])}</h2>",
        _table(_summary_rows(report["fleet"], t, lang)),
    ]
    none = t["none"]
    for site in report["sites"]:
        parts.append(f"<h2>{escape(t['site'])}: {escape(site['site'])}</h2>")
        parts.append(_table(_summary_rows(site["summary"], t, lang)))
        rows: list[list[str]] = [
            [
                _room(d.get("name", ""), d["room"]),
                d["device_id"],
                _percent(d["availability"], none),
                str(d["faults_opened"]),
            ]
            for d in site["devices"]
        ]
        parts.append(_grid([t["room"], t["device"], t["online"], t["faults"]], rows))
        room_rows: list[list[str]] = [
            [
                _room(r.get("name", ""), r["room"]),
                _duration(r["occupied_seconds"], t),
                _duration(r["uncovered_seconds"], t),
                _percent(r["coverage_ratio"], none),
            ]
            for r in site["rooms"]
        ]
        parts.append(_grid([t["room"], t["occupied"], t["uncovered"], t["coverage"]], room_rows))
        parts += _fault_list(site, t, lang, timezone)
        parts += _alert_list(site, t, lang, timezone)
    parts.append("</body></html>")
    return "".join(parts)


def _fault_list(site: dict[str, Any], t: dict[str, str], lang: Lang, timezone: str) -> list[str]:
    faults = site.get("faults") or []
    if not faults:
        return []
    zone = ZoneInfo(timezone)
    rows: list[list[str]] = []
    for fault in faults:
        message = _stored(fault.get("reason_message")) or _legacy_reason(fault)
        fallback = fault["reason"] or fault["type"]
        reason = render(message, lang, fallback=fallback) if message else fallback
        if fault.get("in_maintenance"):
            reason += t["maintenance"]
        rows.append(
            [
                _when(fault["opened_at"], zone),
                _room(fault.get("name", ""), fault["device_id"]),
                f"{word('kind.' + fault['kind'], lang)} {fault['component']}",
                reason,
                _nowrap(word(f"severity.{fault['severity']}", lang)),
                _nowrap(word(f"status.{fault['state']}", lang)),
            ]
        )
    header = [t["opened"], t["room"], t["component"], t["reason"], t["severity"], t["state"]]
    total = site["summary"]["faults_opened"]
    return [f"<h3>{escape(t['fault_list'])}</h3>", _grid(header, rows), _listed(faults, total, t)]


def _alert_list(site: dict[str, Any], t: dict[str, str], lang: Lang, timezone: str) -> list[str]:
    alerts = site.get("alerts") or []
    if not alerts:
        return []
    zone = ZoneInfo(timezone)
    rows: list[list[str]] = []
    for alert in alerts:
        message = _stored(alert.get("message"))
        where = place(site["site"], alert["room"], alert["device_id"], alert.get("name", ""))
        detail = (
            render(message, lang, where=where, fallback=alert["detail"], timezone=timezone)
            if message
            else alert["detail"]
        )
        rule_key = f"rule.{alert['rule']}"
        rule = word(rule_key, lang) if rule_key in CATALOGUE else alert["title"]
        rows.append(
            [
                _when(alert["raised_at"], zone),
                _room(alert.get("name", ""), alert["device_id"] or ""),
                rule,
                detail,
                _nowrap(word(f"severity.{alert['severity']}", lang)),
                _nowrap(word(f"status.{alert['state']}", lang)),
            ]
        )
    header = [t["raised"], t["room"], t["alert"], t["detail"], t["severity"], t["state"]]
    counts = site["summary"]["alerts"]
    total = sum(counts.get(severity, 0) for severity in LISTED_SEVERITIES)
    return [f"<h3>{escape(t['alert_list'])}</h3>", _grid(header, rows), _listed(alerts, total, t)]


def _listed(listed: list[Any], total: int, t: dict[str, str]) -> str:
    if len(listed) >= total:
        return ""
    return f'<p class="muted">{escape(t["listed"].format(n=len(listed), total=total))}</p>'


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _cell(value: str) -> str:
    return value if isinstance(value, _Cell) else escape(value)


def _grid(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def to_csv(report: dict[str, Any]) -> str:
    """One line per figure: scope, site, device or room, metric, value (for spreadsheets)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["period", "scope", "site", "subject", "metric", "value"])
    label = report["period"]["label"]

    def summary(scope: str, site: str, figures: dict[str, Any]) -> None:
        for key, value in figures.items():
            if isinstance(value, dict):
                for sub, number in value.items():
                    writer.writerow([label, scope, site, "", f"{key}.{sub}", number])
            else:
                writer.writerow([label, scope, site, "", key, _value(value)])

    summary("fleet", "", report["fleet"])
    for site in report["sites"]:
        summary("site", site["site"], site["summary"])
        for device in site["devices"]:
            for key in ("availability", "online_seconds", "observed_seconds", "faults_opened"):
                writer.writerow(
                    [label, "device", site["site"], device["device_id"], key, _value(device[key])]
                )
        for room in site["rooms"]:
            for key in (
                "occupied_seconds",
                "unrecorded_seconds",
                "uncovered_seconds",
                "coverage_ratio",
            ):
                writer.writerow([label, "room", site["site"], room["room"], key, _value(room[key])])
    return out.getvalue()


def _value(value: object) -> object:
    return "" if value is None else value
