"""The command-center page's words: Simplified Chinese by default, English on request.

The page asks for a language with ``?lang=zh`` or ``?lang=en`` and keeps it in a cookie; nothing
else (not the browser's ``Accept-Language``) changes it, so every screen in a police unit shows
the same words. Each key exists in both languages (a test checks that the script uses no other).
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from collector.messages import words_of

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT: Lang = "zh"
COOKIE = "custos_lang"

_PAGE_WORDS: dict[str, tuple[str, str]] = {
    # key: (zh, en)
    "title": ("办案区监管指挥中心", "Custody area command center"),
    "switch_language": ("English", "中文"),
    "live": ("实时", "Live"),
    "reconnecting": ("连接中断，正在重连…", "Connection lost, reconnecting…"),
    "alerts": ("告警", "Alerts"),
    "no_alerts": ("没有待处理的告警", "No open alerts"),
    "devices": ("设备", "Devices"),
    "no_devices": ("还没有登记的设备", "No device enrolled yet"),
    "faults": ("故障与维修时限", "Faults and repair deadlines"),
    "no_faults": ("没有未修复的故障", "No open fault"),
    "recordings": ("最新录像", "Latest recordings"),
    "no_recordings": ("还没有录像", "No recording yet"),
    "reports": ("日报", "Daily report"),
    "api": ("接口", "API"),
    "ack": ("确认", "Acknowledge"),
    "ask_name": ("请输入您的姓名或警号", "Your name or badge number"),
    "ask_token": ("此操作需要管理口令", "This needs the admin token"),
    "failed": ("操作失败", "Failed"),
    "play": ("播放", "Play"),
    "close": ("关闭", "Close"),
    "level": ("升级", "level"),
    "times": ("次", "times"),
    "ago": ("前", "ago"),
    "left": ("剩余", "left"),
    "overdue": ("已超时", "overdue"),
    "seconds": ("秒", "s"),
    "minutes": ("分钟", "min"),
    "hours": ("小时", "h"),
    "days": ("天", "d"),
    "col_room": ("房间", "Room"),
    "col_device": ("设备", "Device"),
    "col_connection": ("连接", "Connection"),
    "col_heartbeat": ("最近心跳", "Last heartbeat"),
    "col_component": ("部件", "Component"),
    "col_reason": ("原因", "Reason"),
    "col_opened": ("发生", "Opened"),
    "col_respond_by": ("响应时限", "Respond by"),
    "col_restore_by": ("修复时限", "Restore by"),
    "col_state": ("状态", "State"),
    "col_stream": ("通道", "Stream"),
    "col_time": ("时间", "Time"),
    "timezone": ("时区", "Time zone"),
    "connection_online": ("在线", "Online"),
    "connection_stopped": ("已停止", "Stopped"),
    "connection_offline": ("离线", "Offline"),
    "connection_unknown": ("未知", "Unknown"),
}


# Words for values the API returns, shared with the reports: from the one catalogue.
_FROM_CATALOGUE = {"severity": "severity", "state": "status", "rule": "rule", "kind": "kind"}
STRINGS: dict[str, tuple[str, str]] = _PAGE_WORDS | {
    f"{prefix}_{name}": pair
    for prefix, group in _FROM_CATALOGUE.items()
    for name, pair in words_of(group).items()
}


def words(lang: Lang) -> dict[str, str]:
    index = LANGS.index(lang)
    return {key: pair[index] for key, pair in STRINGS.items()}


_BY_NAME: dict[str, Lang] = {lang: lang for lang in LANGS}


def choose(request: web.Request) -> tuple[Lang, bool]:
    """The page's language, and whether the request asked for it (then it is remembered)."""
    asked = _BY_NAME.get(request.query.get("lang", ""))
    if asked is not None:
        return asked, True
    return _BY_NAME.get(request.cookies.get(COOKIE, ""), DEFAULT), False
