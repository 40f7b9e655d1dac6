"""The device configuration: one pydantic model that rejects unknown keys.

A config file is TOML (see ``firmware_config/profiles/`` for complete examples). Every field has a
sane default except what only the installer can know: the device id, site, room and pins.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final, Literal, Self

from pydantic import (
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    UrlConstraints,
    field_validator,
    model_validator,
)

from protocol.topics import DEVICE_ID_PATTERN

CONFIG_SCHEMA_VERSION: Final = 1

DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
ComponentId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
BrokerUrl = Annotated[AnyUrl, UrlConstraints(allowed_schemes=["mqtt", "mqtts"], default_port=1883)]
HttpUrl = Annotated[AnyUrl, UrlConstraints(allowed_schemes=["http", "https"])]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoomKind(StrEnum):
    INTERROGATION = "interrogation"  # 讯问室
    INQUIRY = "inquiry"  # 询问室
    WAITING = "waiting"  # 候问室
    HALL = "hall"  # 办案区大厅 / corridor
    OTHER = "other"


class DeviceSection(Strict):
    id: DeviceId
    site: Slug
    room: Slug
    room_kind: RoomKind
    name: Annotated[str, StringConstraints(max_length=80)] = ""
    board: Slug = "rpi4"


class InputRole(StrEnum):
    DOOR = "door"
    PIR = "pir"
    PANIC = "panic"
    TAMPER = "tamper"


class InputConfig(Strict):
    """One digital input. ``active`` is the electrical level that means "door open", "motion",
    "button pressed" or "enclosure open"; ``pull`` is the internal resistor."""

    role: InputRole
    pin: Annotated[int, Field(ge=0, le=63)]
    active: Literal["high", "low"]
    pull: Literal["up", "down", "none"] = "up"
    debounce_ms: Annotated[int, Field(ge=0, le=5000)] = 50


class CameraSource(StrEnum):
    PICAMERA2 = "picamera2"
    RTSP = "rtsp"
    USB = "usb"
    SYNTHETIC = "synthetic"


class CameraConfig(Strict):
    id: ComponentId
    role: Literal["room", "subject", "door", "other"] = "room"
    source: CameraSource
    url: Annotated[str, StringConstraints(max_length=500)] | None = None
    device: Annotated[str, StringConstraints(max_length=200)] | None = None
    width: Annotated[int, Field(ge=64, le=3840)] = 1280
    height: Annotated[int, Field(ge=48, le=2160)] = 720
    fps: Annotated[int, Field(ge=1, le=60)] = 15

    @model_validator(mode="after")
    def _source_needs_address(self) -> Self:
        if self.source is CameraSource.RTSP and not (self.url or "").startswith("rtsp://"):
            raise ValueError("an rtsp camera needs url = 'rtsp://…'")
        if self.source is CameraSource.USB and not self.device:
            raise ValueError("a usb camera needs device = '/dev/videoN'")
        return self


class MicrophoneConfig(Strict):
    id: ComponentId
    role: Literal["officer", "subject", "room", "other"] = "room"
    source: Literal["sounddevice", "synthetic"]
    device: Annotated[str, StringConstraints(max_length=200)] | None = None
    sample_rate: Literal[8000, 16000, 22050, 32000, 44100, 48000] = 16000
    channels: Annotated[int, Field(ge=1, le=2)] = 1


class BrokerSection(Strict):
    url: BrokerUrl = AnyUrl("mqtt://127.0.0.1:1883")
    keepalive_s: Annotated[int, Field(ge=2, le=600)] = 10
    username: Annotated[str, StringConstraints(max_length=100)] | None = None
    password_file: Path | None = None


class CollectorSection(Strict):
    url: HttpUrl = AnyUrl("http://127.0.0.1:8080")


class HeartbeatSection(Strict):
    interval_s: Annotated[float, Field(ge=1, le=300)] = 10.0


class UplinkSection(Strict):
    window: Annotated[int, Field(ge=1, le=10_000)] = 256
    """Events published but not yet acknowledged by the collector, at most."""
    resend_after_s: Annotated[float, Field(ge=1, le=3600)] = 10.0
    """Publish again what the collector has not acknowledged after this long (doubling to 5 min)."""
    keep_delivered_days: Annotated[int, Field(ge=0, le=3650)] = 7


class StorageSection(Strict):
    data_dir: Path = Path("/var/lib/custos-agent")
    reserve_mb: Annotated[int, Field(ge=0, le=100_000)] = 200
    """Space kept free for the outbox and manifests: recording stops before eating into it."""
    keep_receipted_days: Annotated[int, Field(ge=0, le=3650)] = 7
    """Receipted segments are deleted after this long (or earlier, oldest first, under disk
    pressure). Segments without a receipt are never deleted."""


class UploadSection(Strict):
    """Uploading recorded segments to the collector (tus 1.0) and checking its receipts."""

    enabled: bool = True
    bandwidth_bytes_per_s: Annotated[int, Field(ge=1024, le=10_000_000_000)] | None = None
    """Upper bound on upload bandwidth, so recordings never crowd out events on a thin link;
    unset: unlimited."""
    chunk_bytes: Annotated[int, Field(ge=16 * 1024, le=64 * 1024 * 1024)] = 1024 * 1024
    """Bytes per ``PATCH`` (each with its sha256): what an interrupted request costs at most."""
    concurrency: Literal[1] = 1
    """Uploads at a time. One: segments arrive in order and the link stays free for events."""
    token_file: Path | None = None
    """File holding the collector's bearer token, when the collector requires one for uploads."""
    collector_key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{43}=$")] | None = None
    """The collector's receipt key (base64 of the raw Ed25519 public key, as
    ``GET /api/v1/keys/collector`` shows it). Unset: fetched on first use and pinned in the data
    directory (``collector_key.b64``)."""
    request_timeout_s: Annotated[float, Field(ge=1, le=3600)] = 30.0
    """A request that makes no progress for this long is abandoned (and resumed)."""
    retry_max_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    """Retries back off (with jitter) up to this long between attempts."""
    free_hours: Annotated[float, Field(ge=0, le=10_000)] | None = None
    """Disk pressure: while fewer hours of recording than this fit above ``reserve_mb``,
    receipted segments are deleted, oldest first. Unset: ``health.disk_low_hours`` + 1, so the
    disk only reads ``low`` when recordings that are not uploaded yet fill it."""


class RoomSection(Strict):
    """Occupancy and sensor-liveness rules of the room."""

    vacancy_timeout_s: Annotated[float, Field(ge=10, le=86_400)] = 300.0
    """After someone left (door opened and closed), no motion for this long: the room is empty.
    Without a door cycle a silent PIR means a still person, never an empty room."""
    entry_timeout_s: Annotated[float, Field(ge=5, le=3600)] = 60.0
    """A door opened and closed without any motion inside: empty again after this long."""
    pir_suspect_door_cycles: Annotated[int, Field(ge=2, le=1000)] = 5
    """This many door openings without a single motion: the PIR is suspect."""
    stuck_active_s: Annotated[float, Field(ge=60, le=7 * 86_400)] = 3600.0
    """An input active this long without a change is suspect (door, panic, tamper)."""


class HealthSection(Strict):
    """When a component counts as broken. Each verdict needs the condition to hold for a while,
    so one dark frame or one quiet second is not a fault."""

    camera_stall_s: Annotated[float, Field(ge=1, le=600)] = 5.0
    """No frame for this long: the camera has stalled."""
    covered_contrast: Annotated[float, Field(ge=0, le=128)] = 4.0
    """Luma standard deviation below this: the picture is flat (lens covered or blinded)."""
    covered_for_s: Annotated[float, Field(ge=1, le=600)] = 10.0
    muted_dbfs: Annotated[float, Field(ge=-200, le=0)] = -90.0
    """Below this the microphone gives digital silence: muted or disconnected."""
    muted_for_s: Annotated[float, Field(ge=1, le=600)] = 10.0
    silent_dbfs: Annotated[float, Field(ge=-200, le=0)] = -65.0
    """Below this for ``silent_for_s`` the room is suspiciously quiet (a real room never is)."""
    silent_for_s: Annotated[float, Field(ge=1, le=3600)] = 120.0
    clipped_ratio: Annotated[float, Field(gt=0, le=1)] = 0.01
    clipped_for_s: Annotated[float, Field(ge=1, le=600)] = 5.0
    disk_low_hours: Annotated[float, Field(ge=0, le=10_000)] = 24.0
    """Fewer hours of recording left than this: disk low (an alarm before it is full)."""
    clock_max_error_ms: Annotated[float, Field(ge=1, le=3_600_000)] = 1000.0
    cpu_hot_c: Annotated[float, Field(ge=40, le=120)] = 80.0


class RecordingSection(Strict):
    segment_s: Annotated[float, Field(ge=2, le=300)] = 10.0
    pre_roll_s: Annotated[float, Field(ge=0, le=60)] = 5.0
    post_roll_s: Annotated[float, Field(ge=0, le=3600)] = 30.0
    """Recording goes on this long after the room is empty."""


class AgentConfig(Strict):
    schema_version: Literal[1] = CONFIG_SCHEMA_VERSION
    device: DeviceSection
    broker: BrokerSection = BrokerSection()
    collector: CollectorSection = CollectorSection()
    heartbeat: HeartbeatSection = HeartbeatSection()
    uplink: UplinkSection = UplinkSection()
    storage: StorageSection = StorageSection()
    upload: UploadSection = UploadSection()
    room: RoomSection = RoomSection()
    recording: RecordingSection = RecordingSection()
    health: HealthSection = HealthSection()
    inputs: dict[ComponentId, InputConfig] = Field(default_factory=dict)
    cameras: list[CameraConfig] = Field(default_factory=list, max_length=8)
    microphones: list[MicrophoneConfig] = Field(default_factory=list, max_length=8)

    @field_validator("inputs", mode="before")
    @classmethod
    def _role_defaults_to_name(cls, value: object) -> object:
        """``[inputs.door]`` needs no ``role = "door"``; ``[inputs.door2]`` does."""
        if not isinstance(value, dict):
            return value
        roles = {role.value for role in InputRole}
        return {
            name: (
                {"role": name, **spec}
                if isinstance(spec, dict) and "role" not in spec and name in roles
                else spec
            )
            for name, spec in value.items()
        }

    @model_validator(mode="after")
    def _heartbeats_prove_liveness(self) -> Self:
        # The collector declares a device offline after 1.5 x keepalive without a heartbeat: the
        # broker's own check runs only every few seconds (Mosquitto 2.0 adds up to 6 s).
        if self.heartbeat.interval_s > self.broker.keepalive_s:
            raise ValueError(
                f"heartbeat.interval_s ({self.heartbeat.interval_s:g}) must not exceed "
                f"broker.keepalive_s ({self.broker.keepalive_s}): the collector judges a device "
                "offline after 1.5 x keepalive without a heartbeat"
            )
        return self

    @model_validator(mode="after")
    def _unique_pins_and_ids(self) -> Self:
        seen_pins: dict[int, str] = {}
        for name, spec in self.inputs.items():
            if spec.pin in seen_pins:
                raise ValueError(
                    f"inputs.{name}.pin {spec.pin} is already used by inputs.{seen_pins[spec.pin]}"
                )
            seen_pins[spec.pin] = name
        seen_ids: dict[str, str] = {name: "inputs" for name in self.inputs}
        for section, items in (("cameras", self.cameras), ("microphones", self.microphones)):
            for item in items:
                if item.id in seen_ids:
                    raise ValueError(
                        f"{section} id {item.id!r} is already used in {seen_ids[item.id]}"
                    )
                seen_ids[item.id] = section
        return self

    def config_hash(self) -> str:
        """sha256 of the canonical JSON form: what the device reports, so drift is visible."""
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def inputs_with_role(self, role: InputRole) -> list[str]:
        return [name for name, spec in self.inputs.items() if spec.role is role]
