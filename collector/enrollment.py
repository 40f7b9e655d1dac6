"""Enrolling devices: through the API, the CLI (which calls the API) or a registry file at start."""

from __future__ import annotations

import functools
import sqlite3
import tomllib
from pathlib import Path

from pydantic import ValidationError

from collector.ingest.processor import IngestProcessor
from collector.registry import Enrollment, EnrollOutcome
from collector.store.writer import DbWriter
from protocol.clock import Clock
from protocol.validation import problems as describe


class RegistryFileError(Exception):
    pass


ENROLLMENTS_PER_JOB = 500
"""A registry file's devices per transaction: one commit each made 10,000 devices take 10 s to
start, and all in one job would hold the writer (and any alarm) for as long."""


async def enroll(
    writer: DbWriter, processor: IngestProcessor, enrollment: Enrollment, clock: Clock
) -> EnrollOutcome:
    [outcome] = await enroll_many(writer, processor, [enrollment], clock)
    return outcome


async def enroll_many(
    writer: DbWriter, processor: IngestProcessor, enrollments: list[Enrollment], clock: Clock
) -> list[EnrollOutcome]:

    def job(db: sqlite3.Connection, part: list[Enrollment]) -> list[EnrollOutcome]:
        outcomes = []
        for enrollment in part:
            outcomes.append(processor.registry.enroll(db, enrollment, clock.now()))
            processor.add_device(enrollment.device_id)
        return outcomes

    outcomes: list[EnrollOutcome] = []
    for start in range(0, len(enrollments), ENROLLMENTS_PER_JOB):
        part = enrollments[start : start + ENROLLMENTS_PER_JOB]
        outcomes += await writer.submit(functools.partial(job, part=part))
    return outcomes


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
            problems += describe(exc, whole="(entry)", prefix=f"devices[{index}].")
    if problems:
        raise RegistryFileError(f"{path}:\n  " + "\n  ".join(problems))
    return enrollments
