"""The collector's settings: one model, filled from command-line options and environment."""

from __future__ import annotations

import ssl
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from collector.alerts.policy import AlertPolicy
from collector.faults.policy import FaultPolicy
from collector.mqtt.address import BrokerAddress
from protocol.validation import problems


class SettingsError(Exception):
    """Settings that cannot be used; the message names every problem with its field path."""


class CollectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: str = "mqtt://127.0.0.1:1883"
    """Broker URL: ``mqtt://host:port`` or ``mqtts://user:password@host:port``."""
    broker_ca_file: Path | None = None
    """With ``mqtts``: the CA that signed the broker's certificate (default: the system's)."""
    broker_cert_file: Path | None = None
    """With ``mqtts``: the collector's client certificate (PEM), for a broker that asks."""
    broker_key_file: Path | None = None
    """The key of ``broker_cert_file`` (PEM)."""
    broker_server_name: str | None = None
    """The name the broker's certificate must carry, when it is not the URL's host."""
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
    retention_days: Annotated[int, Field(ge=365)] = 365
    """Keep every stored recording at least this many days after it was stored; never fewer
    than 365 (a lower value is refused at start). Legal holds keep recordings longer."""
    max_upload_bytes: Annotated[int, Field(ge=1)] = 2 * 1024**3
    """The largest segment upload accepted (``Tus-Max-Size``)."""
    purge_interval_s: Annotated[float, Field(gt=0)] = 3600.0
    """How often expired recordings are purged and abandoned uploads expired."""
    upload_expiry_days: Annotated[float, Field(gt=0)] = 7.0
    """An upload not finished this long after its creation is removed (the agent starts over)."""
    evidence_sync_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    """How often manifests and keys of newly committed events are indexed."""
    alerts: AlertPolicy = AlertPolicy()
    faults: FaultPolicy = FaultPolicy()
    clock_skew_limit_ms: Annotated[float, Field(ge=10, le=3_600_000)] = 2000.0
    """A device whose clock differs from the collector's by more than this gets a fault."""

    @model_validator(mode="after")
    def _broker_is_usable(self) -> CollectorSettings:
        address = self.broker_address()  # a ValueError here names the problem
        try:
            address.ssl_context()  # the TLS files are read at start, not at the first connect
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot use the broker's TLS files: {exc}") from None
        return self

    def broker_address(self) -> BrokerAddress:
        """Where the broker is and how to log in and verify it (URL plus TLS files)."""
        return BrokerAddress.parse(self.broker).with_tls_files(
            ca_file=self.broker_ca_file,
            cert_file=self.broker_cert_file,
            key_file=self.broker_key_file,
            server_name=self.broker_server_name,
        )


def load_settings(config: Path | None, overrides: Mapping[str, Any]) -> CollectorSettings:
    """The config file's values, overridden by whatever ``overrides`` gives (not ``None``)."""
    values: dict[str, Any] = {}
    if config is not None:
        try:
            values = tomllib.loads(config.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read {config}: {exc}") from exc
    values |= {key: value for key, value in overrides.items() if value is not None}
    try:
        return CollectorSettings.model_validate(values)
    except ValidationError as exc:
        source = f" in {config}" if config else ""
        listed = "\n  ".join(problems(exc))
        raise SettingsError(f"invalid settings{source}:\n  {listed}") from exc
