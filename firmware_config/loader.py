"""Load a device config file and report every problem with its field path."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from firmware_config.boards import BOARDS
from firmware_config.schema import AgentConfig, CameraSource, InputRole, RoomKind
from protocol.validation import field_path


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


class ConfigError(Exception):
    """The config cannot be used; ``issues`` holds every error found, each with its field path."""

    def __init__(self, source: str, issues: Sequence[ConfigIssue]) -> None:
        self.source = source
        self.issues = list(issues)
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"invalid device config {source}:\n{lines}")


def check_config_text(
    text: str, source: str = "<config>"
) -> tuple[AgentConfig | None, list[ConfigIssue]]:
    """Parse and validate; return the config (``None`` if unusable) and every issue found."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [ConfigIssue("(toml)", str(exc))]
    try:
        config = AgentConfig.model_validate(raw)
    except ValidationError as exc:
        return None, [
            ConfigIssue(field_path(error["loc"]), error["msg"])
            for error in exc.errors(include_url=False)
        ]
    issues = board_issues(config) + advice(config)
    if any(issue.severity == "error" for issue in issues):
        return None, issues
    return config, issues


def check_config(path: Path) -> tuple[AgentConfig | None, list[ConfigIssue]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [ConfigIssue("(file)", f"cannot read {path}: {exc.strerror or exc}")]
    return check_config_text(text, str(path))


def load_config(path: Path) -> AgentConfig:
    """The validated config, or ``ConfigError`` listing every error. Warnings are not errors."""
    config, issues = check_config(path)
    if config is None:
        raise ConfigError(str(path), [issue for issue in issues if issue.severity == "error"])
    return config


def board_issues(config: AgentConfig) -> list[ConfigIssue]:
    board = BOARDS.get(config.device.board)
    if board is None:
        return [
            ConfigIssue(
                "device.board",
                f"unknown board {config.device.board!r}; known: {', '.join(sorted(BOARDS))}",
            )
        ]
    issues = []
    for name, spec in config.inputs.items():
        if spec.pin not in board.gpio:
            issues.append(
                ConfigIssue(
                    f"inputs.{name}.pin", f"GPIO{spec.pin} does not exist on {board.description}"
                )
            )
        elif spec.pin in board.avoid:
            issues.append(
                ConfigIssue(
                    f"inputs.{name}.pin",
                    f"GPIO{spec.pin} is usually {board.avoid[spec.pin]}",
                    "warning",
                )
            )
    if board.name != "sim":
        for index, camera in enumerate(config.cameras):
            if camera.source is CameraSource.SYNTHETIC:
                issues.append(
                    ConfigIssue(
                        f"cameras[{index}].source",
                        "a synthetic camera records no real room",
                        "warning",
                    )
                )
        for index, mic in enumerate(config.microphones):
            if mic.source == "synthetic":
                issues.append(
                    ConfigIssue(
                        f"microphones[{index}].source",
                        "a synthetic microphone records no real room",
                        "warning",
                    )
                )
    return issues


def advice(config: AgentConfig) -> list[ConfigIssue]:
    """What an installer should double-check: legal but unusual for the room kind."""
    issues = []
    kind = config.device.room_kind
    if kind in (RoomKind.INTERROGATION, RoomKind.INQUIRY):
        if len(config.cameras) < 2:
            issues.append(
                ConfigIssue(
                    "cameras",
                    f"an {kind.value} room normally has two cameras (room and subject)",
                    "warning",
                )
            )
        if len(config.microphones) < 2:
            issues.append(
                ConfigIssue(
                    "microphones",
                    f"an {kind.value} room normally has two microphones (officer and subject)",
                    "warning",
                )
            )
    for role in (InputRole.DOOR, InputRole.PIR):
        if kind is not RoomKind.OTHER and not config.inputs_with_role(role):
            issues.append(
                ConfigIssue(
                    "inputs", f"no {role.value} input: occupancy cannot be sensed", "warning"
                )
            )
    if kind in (
        RoomKind.INTERROGATION,
        RoomKind.INQUIRY,
        RoomKind.WAITING,
    ) and not config.inputs_with_role(InputRole.PANIC):
        issues.append(
            ConfigIssue("inputs", "no panic button in a room where people are held", "warning")
        )
    return issues
