"""JSON Schemas of the wire models, exported for other implementations and snapshotted in tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from protocol.messages import WIRE_MODELS


def json_schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema per message type, keyed by the message's ``type``."""
    return {name: model.model_json_schema() for name, model in sorted(WIRE_MODELS.items())}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(directory: Path) -> list[Path]:
    """Write ``<type>.schema.json`` files into ``directory`` (durably: temp, fsync, rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        target = directory / f"{name}.schema.json"
        temp = target.with_suffix(".tmp")
        with temp.open("w", encoding="utf-8") as handle:
            handle.write(render(schema))
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(target)
        written.append(target)
    return written
