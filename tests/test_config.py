"""The device configuration schema, the shipped profiles and ``custos-agent check-config``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from firmware_config.loader import ConfigError, check_config_text, load_config
from firmware_config.profiles import PROFILE_NAMES, profile, profile_text
from firmware_config.schema import InputRole, RoomKind


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_shipped_profiles_are_valid_and_complete(name: str) -> None:
    config, issues = check_config_text(profile_text(name), name)
    assert config is not None, issues
    assert issues == []  # no warning either: the examples are what an installer should copy
    for role in InputRole:
        assert config.inputs_with_role(role), f"{name} lacks a {role.value} input"


def test_the_interrogation_profile_has_two_cameras_and_two_microphones() -> None:
    config, _ = check_config_text(profile_text("interrogation"))
    assert config is not None
    assert config.device.room_kind is RoomKind.INTERROGATION
    assert {camera.role for camera in config.cameras} == {"room", "subject"}
    assert {mic.role for mic in config.microphones} == {"officer", "subject"}


BROKEN = """
schema_version = 1
colour = "red"
[device]
id = "Room_1"
site = "hq"
room = "r1"
room_kind = "cell"
[inputs.door]
pin = 99
active = "open"
[inputs.lamp]
pin = 5
active = "low"
[[cameras]]
id = "cam"
source = "rtsp"
"""


def test_every_error_is_reported_with_its_field_path() -> None:
    config, issues = check_config_text(BROKEN)
    assert config is None
    paths = {issue.path for issue in issues}
    assert {"colour", "device.id", "device.room_kind", "inputs.door.pin", "inputs.door.active",
            "inputs.lamp.role", "cameras[0]"} <= paths  # fmt: skip


def test_semantic_errors_name_both_sides_of_a_clash() -> None:
    text = profile_text("waiting").replace("pin = 27", "pin = 17")
    config, issues = check_config_text(text)
    assert config is None
    assert "inputs.pir.pin 17 is already used by inputs.door" in issues[0].message


def test_heartbeats_rarer_than_the_keepalive_are_refused() -> None:
    text = profile_text("interrogation").replace("keepalive_s = 10", "keepalive_s = 5")
    config, issues = check_config_text(text)
    assert config is None
    assert "heartbeat.interval_s (10) must not exceed broker.keepalive_s (5)" in issues[0].message


def test_pins_are_checked_against_the_board() -> None:
    text = profile_text("waiting").replace("pin = 23", "pin = 40")
    config, issues = check_config_text(text)
    assert config is None
    assert [(i.path, i.severity) for i in issues] == [("inputs.tamper.pin", "error")]
    assert "does not exist on Raspberry Pi 4" in issues[0].message


def test_load_config_raises_with_all_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.issues) >= 7


def test_the_config_hash_changes_with_the_config_and_only_then() -> None:
    first, _ = check_config_text(profile_text("waiting"))
    again, _ = check_config_text(profile_text("waiting"))
    changed, _ = check_config_text(
        profile_text("waiting").replace("debounce_ms = 20", "debounce_ms = 25")
    )
    assert first and again and changed
    assert first.config_hash() == again.config_hash() != changed.config_hash()


def _agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_check_config_command_prints_field_paths_and_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BROKEN, encoding="utf-8")
    result = _agent("check-config", str(bad))
    assert result.returncode == 1
    assert (
        f"{bad}: error: inputs.door.pin: Input should be less than or equal to 63" in result.stderr
    )
    assert "INVALID (" in result.stderr


def test_check_config_command_accepts_a_good_file() -> None:
    result = _agent("check-config", str(profile("interrogation")))
    assert result.returncode == 0, result.stderr
    assert (
        "OK — device ir-101, site county-hq, room interrogation-1 (interrogation)" in result.stdout
    )


def test_check_config_reports_toml_syntax_errors(tmp_path: Path) -> None:
    bad = tmp_path / "syntax.toml"
    bad.write_text("[device\nid = 1\n", encoding="utf-8")
    result = _agent("check-config", str(bad))
    assert result.returncode == 1
    assert "(toml)" in result.stderr
