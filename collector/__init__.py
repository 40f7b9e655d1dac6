"""The Custos collector: MQTT ingest, device health, alerts, evidence, API and reports."""

__version__ = "0.1.0"
