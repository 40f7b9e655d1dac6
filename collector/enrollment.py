"""Enrolling devices: through the API, the CLI (which calls the API) or a registry file at start."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

from pydantic import ValidationError

from collector.registry import Enrollment, EnrollOutcome
from collector.store.writer import DbWriter
from protocol.clock import Clock


class RegistryFileError(Exception):
    pass


async def enroll(writer: DbWriter, enrollment: Enrollment, clock: Clock) -> EnrollOutcome:
    processor = writer.processor

    def job(db: sqlite3.Connection) -> EnrollOutcome:
        outcome = processor.registry.enroll(db, enrollment, clock.now())
        processor.add_device(enrollment.device_id)
        return outcome

    return await writer.submit(job)


def read_registry_file(path: Path) -> list[Enrollment]:
    """``[[devices]]`` tables, each an :class:`Enrollment`; every error names its entry."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RegistryFileError(f"cannot read registry file {path}: {exc}") from exc
    entries = data.get("devices", [])
    if not isinstance(entries, list):
        raise RegistryFileError(f"{path}: 'devices' must be an array of tables ([[devices]])")
    enrollments, problems = [], []
    for index, entry in enumerate(entries):
        try:
            enrollments.append(Enrollment.model_validate(entry))
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                where = ".".join(str(p) for p in error["loc"])
                problems.append(f"devices[{index}].{where}: {error['msg']}")
    if problems:
        raise RegistryFileError(f"{path}:\n  " + "\n  ".join(problems))
    return enrollments
