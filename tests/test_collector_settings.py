"""The collector's settings file: the shipped example loads; mistakes name their field."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.alerts.policy import SitePolicy
from collector.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_example_loads_and_options_override_it() -> None:
    settings = load_settings(
        ROOT / "deploy" / "collector.toml", {"http_port": "9000", "broker": None}
    )
    assert settings.http_port == 9000
    assert settings.broker.startswith("mqtt://custos-collector:")
    assert settings.alerts.site("county-hq").business_hours == "07:30-20:00"
    assert settings.alerts.site("elsewhere").business_hours == "08:00-18:00"
    assert [hook.min_level for hook in settings.alerts.webhooks] == [0, 1]


def test_mistakes_are_named_by_field_path(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        'http_port = 70000\ncolour = "red"\n[alerts.default_site]\nbusiness_hours = "8-18"\ntimezone = "Mars/Base"\n',
        encoding="utf-8",
    )
    with pytest.raises(SettingsError) as caught:
        load_settings(config, {})
    message = str(caught.value)
    for path in (
        "http_port",
        "colour",
        "alerts.default_site.business_hours",
        "alerts.default_site.timezone",
    ):
        assert f"\n  {path}: " in message


def test_business_hours_are_local_time_and_may_span_midnight() -> None:
    day = SitePolicy(business_hours="08:00-18:00", timezone="Asia/Shanghai")
    assert day.within_business_hours(datetime(2026, 11, 21, 1, 30, tzinfo=UTC))  # 09:30 in Beijing
    assert not day.within_business_hours(datetime(2026, 11, 21, 11, 0, tzinfo=UTC))  # 19:00
    night_shift = SitePolicy(business_hours="20:00-06:00", timezone="Asia/Shanghai")
    assert night_shift.within_business_hours(datetime(2026, 11, 21, 18, 0, tzinfo=UTC))  # 02:00


def test_serve_refuses_a_bad_config_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[alerts.escalation]\nafter_s = 1\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "serve", "--config", str(config), "--data", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "alerts.escalation.after_s: Input should be greater than or equal to 5" in result.stderr


def test_the_broker_tls_files_are_checked_at_start(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="need mqtts"):
        load_settings(None, {"broker": "mqtt://127.0.0.1", "broker_ca_file": tmp_path / "ca.crt"})
    with pytest.raises(SettingsError, match="cannot use the broker's TLS files"):
        load_settings(None, {"broker": "mqtts://broker", "broker_ca_file": tmp_path / "none.crt"})
    with pytest.raises(SettingsError, match="needs its key"):
        load_settings(None, {"broker": "mqtts://broker", "broker_cert_file": tmp_path / "c.pem"})
    settings = load_settings(None, {"broker": "mqtts://broker:8883", "broker_server_name": "mq"})
    address = settings.broker_address()
    assert (address.host, address.port, address.tls_server_name) == ("broker", 8883, "mq")
