"""What the collector says to people, as a message key with parameters, and the one catalogue that
renders it in Simplified Chinese or English.

Alerts and faults store their message (``Message.dumps()``) next to the English ``detail`` /
``reason`` they always had; the command center's page receives the catalogue of its language and
renders with the same rules (``static/app.js``), the bulletin renders here. A parameter is text, a
number, a nested message (a word that is itself translated, such as a fault reason) or a list of
those (joined the language's way); a time is the nested message ``time`` with its ISO instant in
``at``, shown in the caller's time zone with the offset. ``{where}`` is not a parameter: the caller
supplies the room as it wants it shown (its registry name, with the device id).

Device-reported reasons (``stalled``, ``covered``…) and the agent's sensor-suspect phrases become
messages here too; a phrase this collector does not know stays as the device's own text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Union
from zoneinfo import ZoneInfo

from protocol.localtime import local_stamp

Lang = Literal["zh", "en"]
ParamValue = Union[str, int, float, "Message", Sequence["ParamValue"]]

WHERE = "where"
TIME = "time"
LIST_SEPARATOR: dict[Lang, str] = {"zh": "、", "en": ", "}

CATALOGUE: dict[str, tuple[str, str]] = {
    # key: (zh, en)
    # --- alert details ---------------------------------------------------------------------------
    "alert.panic": ("{where}的紧急按钮被按下。", "The panic button in {where} was pressed."),
    "alert.door": ("{where}的门（{doors}）已打开。", "Door {doors} of {where} is open."),
    "alert.door_after_hours": (
        "非办公时间，{where}的门（{doors}）已打开。",
        "Door {doors} of {where} is open outside business hours.",
    ),
    "alert.recording": (
        "{where}有人，但 {seconds} 秒内未确认开始录像。",
        "{where} is occupied and recording was not confirmed within {seconds} s.",
    ),
    "alert.occupied_fault": (
        "{where}有人时出现故障：{problems}。",
        "{where} is occupied: {problems}.",
    ),
    "alert.occupied_stopped": (
        "{where}有人时设备被正常关闭，房间暂无监控。",
        "{where} is occupied and its device was stopped cleanly: the room is not supervised.",
    ),
    "alert.tamper": (
        "{where}的设备外壳被打开（防拆开关报警）。",
        "The tamper switch of {where} reports the enclosure open.",
    ),
    "alert.obstruction": (
        "{where}的 {component} {reason}。",
        "{component} in {where} is {reason}.",
    ),
    "alert.sensor": ("{where}的传感器 {input} 异常：{reason}。", "{input} in {where}: {reason}."),
    "alert.evidence_tamper.seq_conflict": (
        "{where}的录像 {segment} 再次上传时内容不同：录像可能被篡改。",
        "{where} {segment}: {note}",
    ),
    "alert.evidence_tamper.chain_broken": (
        "{where}的录像 {segment} 哈希链断裂：录像可能被篡改。",
        "{where} {segment}: {note}",
    ),
    "alert.evidence_tamper.key_changed": (
        "{where}的录像签名密钥已更换（重装设备时也会如此，请核实）。",
        "{where}: {note}",
    ),
    "alert.evidence_tamper": ("{where}的录像证据异常（{kind}）。", "{where}: {note}"),
    "alert.sla_response": (
        "{where}的故障 #{fault}（{fault_type}，{component}）未在 {due} 前响应。",
        "Fault #{fault} ({fault_type}, {component}) in {where} was not acknowledged by {due}.",
    ),
    "alert.sla_restore": (
        "{where}的故障 #{fault}（{fault_type}，{component}）未在 {due} 前修复。",
        "Fault #{fault} ({fault_type}, {component}) in {where} was not restored by {due}.",
    ),
    "alert.collector_storage": (
        "采集服务器的数据库因磁盘空间不足无法写入（{note}）。腾出空间之前，事件、报警和录像都无法入库，"
        "暂存在各设备上。",
        "The collector's database cannot commit for lack of space ({note}). Events, alarms and "
        "recordings are not stored until space is freed; devices keep them meanwhile.",
    ),
    # --- parts of sentences ----------------------------------------------------------------------
    "problem.device_offline": ("设备离线", "device offline"),
    "problem.component": ("{component} {reason}", "{component} {reason}"),
    "suspect.no_motion": (
        "连续 {cycles} 次开门均未检测到人员活动",
        "no motion across {cycles} door openings",
    ),
    "suspect.stuck": ("持续 {seconds} 秒处于触发状态", "active for {seconds} s without a change"),
    "text": ("{text}", "{text}"),
    # --- fault reasons (also what a device reports of a component) -------------------------------
    "fault.offline": ("设备离线（连接中断）", "offline"),
    "fault.stopped": ("设备已停止运行", "stopped"),
    "fault.clock_skew": ("时钟偏差 {skew_ms} 毫秒", "clock off by {skew_ms} ms"),
    "fault.clock_skew_unknown": ("时钟偏差未知", "clock off by unknown"),
    "reason.stalled": ("信号中断", "stalled"),
    "reason.covered": ("被遮挡", "covered"),
    "reason.muted": ("静音", "muted"),
    "reason.clipped": ("声音削波失真", "clipped"),
    "reason.silent": ("无声", "silent"),
    "reason.disk full": ("存储已满", "disk full"),
    "reason.low": ("存储空间不足", "low"),
    "reason.unsynced": ("时钟未同步", "unsynced"),
    "reason.drifting": ("时钟漂移", "drifting"),
    "reason.hot": ("温度过高", "hot"),
    "reason.probe failed": ("检测失败", "probe failed"),
    "state.failed": ("故障", "failed"),
    "state.degraded": ("性能下降", "degraded"),
    "state.unknown": ("状态未知", "unknown"),
    "fault_type.device_offline": ("设备离线", "device offline"),
    "fault_type.device_stopped": ("设备停止", "device stopped"),
    "fault_type.component_failed": ("部件故障", "component failed"),
    "fault_type.component_degraded": ("部件性能下降", "component degraded"),
    "fault_type.clock_skew": ("时钟偏差", "clock skew"),
    # --- words (the page's dictionary takes these too) --------------------------------------------
    "severity.critical": ("紧急", "Critical"),
    "severity.high": ("高", "High"),
    "severity.medium": ("中", "Medium"),
    "severity.low": ("低", "Low"),
    "status.raised": ("待确认", "Raised"),
    "status.acknowledged": ("已确认", "Acknowledged"),
    "status.cleared": ("已解除", "Cleared"),
    "status.open": ("待响应", "Open"),
    "status.restored": ("已修复", "Restored"),
    "rule.panic": ("紧急按钮被按下", "Panic button pressed"),
    "rule.door": ("办案区门被打开", "Case-area door opened"),
    "rule.recording": ("房间有人但未确认录像", "Occupied, recording not confirmed"),
    "rule.occupied_fault": ("房间有人时设备故障", "Fault in an occupied room"),
    "rule.occupied_stopped": ("房间有人时设备被关闭", "Device stopped in an occupied room"),
    "rule.tamper": ("设备外壳被打开", "Enclosure opened"),
    "rule.obstruction": ("摄像头被遮挡或麦克风静音", "Camera covered or microphone muted"),
    "rule.sensor": ("传感器异常", "Sensor suspect"),
    "rule.evidence_tamper": ("录像被篡改", "Recording tampered with"),
    "rule.sla_response": ("维修响应超时", "Repair response overdue"),
    "rule.sla_restore": ("维修恢复超时", "Repair restore overdue"),
    "rule.collector_storage": ("采集服务器存储已满", "Collector storage full"),
    "kind.camera": ("摄像头", "Camera"),
    "kind.microphone": ("麦克风", "Microphone"),
    "kind.input": ("传感器", "Sensor"),
    "kind.disk": ("存储", "Disk"),
    "kind.clock": ("时钟", "Clock"),
    "kind.uplink": ("网络", "Uplink"),
    "kind.system": ("系统", "System"),
    "kind.device": ("设备", "Device"),
}

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_NO_MOTION = re.compile(r"^no motion across (\d+) door openings$")
_STUCK = re.compile(r"^active for (\d+) s without a change$")


@dataclass(frozen=True)
class Message:
    key: str
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "params": {k: _to_json(v) for k, v in self.params.items()}}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def loads(cls, text: str | None) -> Message | None:
        """A stored message, or ``None`` for a row written before messages were stored (or
        one that cannot be read: the caller shows the English text instead)."""
        if not text:
            return None
        try:
            return cls.from_json(json.loads(text))
        except ValueError:
            return None

    @classmethod
    def from_json(cls, value: object) -> Message | None:
        """A message from its JSON form (``to_json``), or ``None`` when it is not one."""
        try:
            message = _from_json(value)
        except (TypeError, KeyError):
            return None
        return message if isinstance(message, Message) else None


def _to_json(value: ParamValue) -> Any:
    if isinstance(value, Message):
        return value.to_json()
    if isinstance(value, str | int | float):
        return value
    return [_to_json(item) for item in value]


def _from_json(value: Any) -> ParamValue:
    if isinstance(value, dict):
        params = value["params"]
        if not isinstance(value["key"], str) or not isinstance(params, dict):
            raise TypeError("a message is {key, params}")
        return Message(value["key"], {str(k): _from_json(v) for k, v in params.items()})
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    raise TypeError(f"not a message parameter: {value!r}")


def render(
    message: Message, lang: Lang, *, where: str = "", fallback: str = "", timezone: str = "UTC"
) -> str:
    """The message in ``lang``; ``fallback`` when the catalogue lacks its key or a parameter
    (a message stored by a newer collector)."""
    if message.key == TIME:
        try:
            return local_stamp(str(message.params["at"]), ZoneInfo(timezone))
        except (KeyError, ValueError):
            return fallback or str(message.params.get("at", ""))
    templates = CATALOGUE.get(message.key)
    if templates is None:
        return fallback or message.key
    template = templates[0 if lang == "zh" else 1]
    missing = False

    def substitute(found: re.Match[str]) -> str:
        nonlocal missing
        name = found.group(1)
        if name == WHERE:
            return where
        if name not in message.params:
            missing = True
            return found.group(0)
        return _value(message.params[name], lang, timezone)

    text = _PLACEHOLDER.sub(substitute, template)
    return fallback if missing and fallback else text


def _value(value: ParamValue, lang: Lang, timezone: str) -> str:
    if isinstance(value, Message):
        fallback = str(value.params.get("text", value.key))
        return render(value, lang, fallback=fallback, timezone=timezone)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str | int):
        return str(value)
    return LIST_SEPARATOR[lang].join(_value(item, lang, timezone) for item in value)


def at(moment: datetime) -> Message:
    """A time as a parameter: rendered in the reader's time zone."""
    return Message(TIME, {"at": moment.isoformat()})


def words_of(group: str) -> dict[str, tuple[str, str]]:
    """Every ``group.name`` entry of the catalogue, by ``name``."""
    prefix = f"{group}."
    return {
        key.removeprefix(prefix): pair for key, pair in CATALOGUE.items() if key.startswith(prefix)
    }


def word(key: str, lang: Lang) -> str:
    """One catalogue entry without parameters (a severity, a fault type)."""
    return render(Message(key), lang, fallback=key.rpartition(".")[2])


def place(site: str | None, room: str | None, device_id: str | None, name: str = "") -> str:
    """How a room is named in a sentence: its registry name with the device id, or where it is."""
    if name:
        return f"{name} ({device_id})" if device_id else name
    return f"{site or '?'} / {room or '?'} ({device_id or '?'})"


# --- from what devices say ------------------------------------------------------------------------


def device_reason(reason: str | None, state: str = "failed") -> Message:
    """A component's reason as its device reported it (``stalled``, ``disk full``…)."""
    if reason is None:
        key = f"state.{state}"
        return Message(key if key in CATALOGUE else "state.unknown")
    key = f"reason.{reason}"
    return Message(key) if key in CATALOGUE else Message("text", {"text": reason})


def suspect_reason(reason: str) -> Message:
    """The agent's sensor-suspect phrase (``no motion across 5 door openings``…)."""
    if found := _NO_MOTION.match(reason):
        return Message("suspect.no_motion", {"cycles": int(found.group(1))})
    if found := _STUCK.match(reason):
        return Message("suspect.stuck", {"seconds": int(found.group(1))})
    return Message("text", {"text": reason})
