"""The example room profiles shipped with the package."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

PROFILE_NAMES = ("interrogation", "waiting")


def profile(name: str) -> Traversable:
    if name not in PROFILE_NAMES:
        raise ValueError(f"unknown room profile {name!r}; known: {', '.join(PROFILE_NAMES)}")
    return files("firmware_config").joinpath("profiles", f"{name}.toml")


def profile_text(name: str) -> str:
    return profile(name).read_text(encoding="utf-8")
