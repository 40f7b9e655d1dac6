"""Builds the capture sources and the recorder from the device configuration.

The only place that chooses concrete adapters for cameras and microphones; the adapters import
their libraries lazily, so building a synthetic-only set needs no hardware library at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from uuid import UUID

from edge_agent.capture.ports import MediaSource
from edge_agent.hw.cameras.picamera2 import Picamera2Camera
from edge_agent.hw.cameras.pyav import PyAVCamera
from edge_agent.hw.cameras.synthetic import SyntheticCamera
from edge_agent.hw.microphones.sounddevice import SoundDeviceMicrophone
from edge_agent.hw.microphones.synthetic import SyntheticMicrophone
from edge_agent.recording.catalog import SpoolCatalog
from edge_agent.recording.keys import DeviceKey
from edge_agent.recording.manifest import ManifestSigner
from edge_agent.recording.port import RecorderDeps
from edge_agent.recording.recorder import Emit, RecorderSettings, SegmentRecorder
from firmware_config.schema import AgentConfig, CameraConfig, CameraSource, MicrophoneConfig
from protocol.clock import Clock

SPOOL_DIR = "spool"
KEY_FILE = "device_key.ed25519"


def build_camera(camera: CameraConfig, clock: Clock, *, device_id: str = "") -> MediaSource:
    size = {"width": camera.width, "height": camera.height, "fps": camera.fps}
    if camera.source is CameraSource.SYNTHETIC:
        return SyntheticCamera(camera.id, clock=clock, identity=f"{device_id}/{camera.id}", **size)
    if camera.source is CameraSource.RTSP:
        assert camera.url is not None  # the config schema requires it
        return PyAVCamera.rtsp(camera.id, camera.url, clock=clock, **size)
    if camera.source is CameraSource.USB:
        assert camera.device is not None  # the config schema requires it
        return PyAVCamera.v4l2(camera.id, camera.device, clock=clock, **size)
    return Picamera2Camera(camera.id, clock=clock, **size)


def build_microphone(
    microphone: MicrophoneConfig, clock: Clock, *, device_id: str = ""
) -> MediaSource:
    if microphone.source == "synthetic":
        return SyntheticMicrophone(
            microphone.id,
            clock=clock,
            identity=f"{device_id}/{microphone.id}",
            sample_rate=microphone.sample_rate,
            channels=microphone.channels,
        )
    return SoundDeviceMicrophone(
        microphone.id,
        clock=clock,
        device=microphone.device,
        sample_rate=microphone.sample_rate,
        channels=microphone.channels,
    )


def build_sources(config: AgentConfig, clock: Clock) -> list[MediaSource]:
    """Every camera, then every microphone, in config order (each is its own stream; a
    synthetic one's content is its own as well, by device and component id)."""
    device_id = config.device.id
    return [build_camera(c, clock, device_id=device_id) for c in config.cameras] + [
        build_microphone(m, clock, device_id=device_id) for m in config.microphones
    ]


def build_recorder(
    config: AgentConfig,
    data_dir: Path,
    *,
    clock: Clock,
    device_id: str,
    boot_id: UUID,
    emit: Emit,
    sources: Sequence[MediaSource],
    clock_synced: Callable[[], bool] | None = None,
    settings: RecorderSettings | None = None,
    may_write: Callable[[], bool] | None = None,
) -> SegmentRecorder:
    """Load (or create, at the first start) the device key, open the spool catalog, and build
    the recorder. Call ``await recorder.open()`` to recover the spool and start capturing."""
    key = DeviceKey.load_or_create(data_dir / KEY_FILE)
    catalog = SpoolCatalog.open(data_dir / SPOOL_DIR, clock)
    return SegmentRecorder(
        sources=sources,
        catalog=catalog,
        signer=ManifestSigner(device_id, key),
        clock=clock,
        boot_id=boot_id,
        emit=emit,
        settings=settings
        or RecorderSettings(
            segment_s=config.recording.segment_s, pre_roll_s=config.recording.pre_roll_s
        ),
        clock_synced=clock_synced,
        may_write=may_write,
    )


async def create_recorder(deps: RecorderDeps) -> SegmentRecorder:
    """The agent's ``RecorderFactory``: build the sources and the recorder from the config, recover
    the spool and start capturing."""
    recorder = build_recorder(
        deps.config,
        deps.data_dir,
        clock=deps.clock,
        device_id=deps.device_id,
        boot_id=deps.boot_id,
        emit=deps.emit,
        sources=build_sources(deps.config, deps.clock),
        clock_synced=deps.clock_synced,
        may_write=deps.may_write,
    )
    try:
        await recorder.open()
    except BaseException:
        await recorder.close()
        raise
    return recorder
