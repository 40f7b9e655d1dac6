"""The collector's settings: one model, filled from command-line options and environment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class CollectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: str = "mqtt://127.0.0.1:1883"
    """Broker URL: ``mqtt://host:port`` or ``mqtts://user:password@host:port``."""
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    data_dir: Path = Path("custos-data")
    client_id: str = "custos-collector"
    """MQTT client id prefix; the two sessions are ``<id>-ingest`` and ``<id>-alarm``."""
    keepalive_s: Annotated[int, Field(ge=2, le=600)] = 10
    heartbeat_timeout_factor: Annotated[float, Field(ge=1.5, le=100)] = 3.0
    """A device silent for this many heartbeat intervals is offline."""
    max_batch: Annotated[int, Field(ge=1, le=100_000)] = 2000
    backlog_pause: Annotated[int, Field(ge=100)] = 50_000
    """Stop reading the ingest connection while this many messages wait for the writer."""
    tick_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    admin_token: str | None = None
    """When set, requests that change state need ``Authorization: Bearer <token>``."""
    registry_file: Path | None = None
    """A TOML file of devices to enroll at start (``[[devices]]`` tables)."""
