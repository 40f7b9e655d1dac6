"""A report as a printable HTML page (Simplified Chinese by default, English on request) or CSV."""

from __future__ import annotations

import csv
import io
from html import escape
from typing import Any, Literal

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
        "none": "—",
    },
    "en": {
        "fleet": "Whole fleet",
        "site": "Site",
        "period": "Period",
        "generated": "Generated",
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
        "none": "—",
    },
}


STYLE = (
    "body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "td,th{border:1px solid #ccc;padding:.3em .7em;text-align:left}"
    "th{background:#f3f3f3}h1{margin-bottom:.2em}.muted{color:#666}"
)


def _percent(value: float | None, none: str) -> str:
    return none if value is None else f"{value * 100:.1f}%"


def _duration(seconds: float | None, none: str) -> str:
    if seconds is None:
        return none
    minutes = round(seconds / 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"


def _summary_rows(summary: dict[str, Any], t: dict[str, str]) -> list[tuple[str, str]]:
    none = t["none"]

    def sla(figures: dict[str, int]) -> str:
        return " · ".join(f"{figures[key]} {t[key]}" for key in ("met", "breached", "pending"))

    alerts = (
        ", ".join(f"{severity} {count}" for severity, count in summary["alerts"].items()) or "0"
    )
    return [
        (t["devices"], str(summary["devices"])),
        (t["faults_opened"], str(summary["faults_opened"])),
        (t["faults_restored"], str(summary["faults_restored"])),
        (t["faults_open_at_end"], str(summary["faults_open_at_end"])),
        (t["in_maintenance"], str(summary["faults_opened_in_maintenance"])),
        (t["response"], sla(summary["response_sla"])),
        (t["restore"], sla(summary["restore_sla"])),
        (t["mtta"], _duration(summary["mean_time_to_acknowledge_s"], none)),
        (t["mttr"], _duration(summary["mean_time_to_restore_s"], none)),
        (t["availability"], _percent(summary["availability"], none)),
        (t["coverage"], _percent(summary["recording_coverage"], none)),
        (t["upload"], _percent(summary["upload_completeness"], none)),
        (t["alerts"], alerts),
    ]


def to_html(report: dict[str, Any], lang: Lang = "zh") -> str:
    t = LABELS[lang]
    title = TITLES[lang][report["kind"]]
    period = report["period"]
    html_lang = "zh-CN" if lang == "zh" else "en"
    when = f"{escape(period['label'])} ({escape(period['timezone'])})"
    if not period["complete"]:
        when += escape(t["incomplete"])
    parts = [
        f'<!doctype html><html lang="{html_lang}"><head><meta charset="utf-8">',
        f"<title>{escape(title)} {escape(period['label'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">{escape(t["period"])}: {when} · {escape(t["generated"])}: '
        f"{escape(report['generated_at'][:19])}</p>",
        f"<h2>{escape(t['fleet'])}</h2>",
        _table(_summary_rows(report["fleet"], t)),
    ]
    none = t["none"]
    for site in report["sites"]:
        parts.append(f"<h2>{escape(t['site'])}: {escape(site['site'])}</h2>")
        parts.append(_table(_summary_rows(site["summary"], t)))
        rows = [
            [d["device_id"], d["room"], _percent(d["availability"], none), str(d["faults_opened"])]
            for d in site["devices"]
        ]
        parts.append(_grid([t["device"], t["room"], t["online"], t["faults"]], rows))
        room_rows = [
            [
                r["room"],
                _duration(r["occupied_seconds"], none),
                _duration(r["uncovered_seconds"], none),
                _percent(r["coverage_ratio"], none),
            ]
            for r in site["rooms"]
        ]
        parts.append(_grid([t["room"], t["occupied"], t["uncovered"], t["coverage"]], room_rows))
    parts.append("</body></html>")
    return "".join(parts)


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _grid(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
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
                writer.writerow([label, scope, site, "", key, _cell(value)])

    summary("fleet", "", report["fleet"])
    for site in report["sites"]:
        summary("site", site["site"], site["summary"])
        for device in site["devices"]:
            for key in ("availability", "online_seconds", "observed_seconds", "faults_opened"):
                value = device[key]
                writer.writerow(
                    [
                        label,
                        "device",
                        site["site"],
                        device["device_id"],
                        key,
                        "" if value is None else value,
                    ]
                )
        for room in site["rooms"]:
            for key in (
                "occupied_seconds",
                "unrecorded_seconds",
                "uncovered_seconds",
                "coverage_ratio",
            ):
                value = room[key]
                writer.writerow(
                    [label, "room", site["site"], room["room"], key, "" if value is None else value]
                )
    return out.getvalue()


def _cell(value: object) -> object:
    return "" if value is None else value
